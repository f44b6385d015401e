// `:app`: the OpKey operator app (Jetpack Compose) over `:opkey`. The invite host is a
// build setting (`-Popkey.inviteHost=…`, default in gradle.properties): it goes into the
// App Link intent filter and into the core's list of accepted invite hosts.
plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

val inviteHost: String = providers.gradleProperty("opkey.inviteHost").getOrElse("invite.opkey.example")

// The backend a typed short code is redeemed against; invite links carry their own.
val serverUrl: String = providers.gradleProperty("opkey.serverUrl").getOrElse("https://$inviteHost/")

android {
    namespace = "app.opkey.operator"
    compileSdk = 35

    defaultConfig {
        applicationId = "app.opkey.operator"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        manifestPlaceholders["inviteHost"] = inviteHost
        buildConfigField("String", "INVITE_HOST", "\"$inviteHost\"")
        buildConfigField("String", "SERVER_URL", "\"$serverUrl\"")
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"))
        }
    }

    buildFeatures {
        compose = true
        buildConfig = true
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17) }
}

dependencies {
    implementation(project(":opkey"))
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(platform(libs.compose.bom))
    implementation(libs.compose.ui)
    implementation(libs.compose.ui.tooling.preview)
    implementation(libs.compose.material3)
    debugImplementation(libs.compose.ui.tooling)
}
