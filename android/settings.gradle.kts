// The OpKey Android build: `:opkey` (the core's library: generated Kotlin bindings, the
// native libraries from scripts/build-rust and the Android platform code) and `:app`
// (the operator app, Jetpack Compose). See README.md for what to run first.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        // The Kotlin half of rustls-platform-verifier (the core's TLS certificate check on
        // Android) is published only in the rustls project's own Maven archive.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
            content { includeGroup("rustls") }
        }
    }
}

rootProject.name = "opkey-android"
include(":opkey", ":app")
