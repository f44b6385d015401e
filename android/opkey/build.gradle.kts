// `:opkey`: the OpKey core as an Android library. Its Kotlin is the UniFFI bindings
// generated into the repository's build/bindings/kotlin (bindings/generate), the
// idiomatic layer in src/main/kotlin, and the native libraries scripts/build-rust puts in
// src/main/jniLibs.
import org.gradle.api.provider.ValueSource
import org.gradle.api.provider.ValueSourceParameters
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

/** The repository root: this Gradle project lives in its android/ folder. */
val repository: Directory = rootProject.layout.projectDirectory.dir("..")

/**
 * The version of the crate `rustls-platform-verifier-android` in the workspace Cargo.lock:
 * the Kotlin component of the TLS verifier must be the one the native library was built
 * against. Read at configuration time (and tracked by the configuration cache).
 */
abstract class CargoLockVersion : ValueSource<String, CargoLockVersion.Parameters> {
    interface Parameters : ValueSourceParameters {
        val lockFile: RegularFileProperty
        val crate: Property<String>
    }

    override fun obtain(): String {
        val crate = parameters.crate.get()
        val lines = parameters.lockFile.get().asFile.readLines().map { it.trim() }
        val at = lines.indexOf("name = \"$crate\"")
        check(at >= 0) { "$crate is not in Cargo.lock: did the Rust dependencies change?" }
        val version = lines.drop(at + 1).takeWhile { !it.startsWith("[[") }.firstOrNull { it.startsWith("version = ") }
        return version?.substringAfter('"')?.substringBefore('"')?.takeIf { it.isNotEmpty() }
            ?: error("Cargo.lock has no version for $crate")
    }
}

val verifierVersion: Provider<String> = providers.of(CargoLockVersion::class.java) {
    parameters.lockFile.set(repository.file("Cargo.lock"))
    parameters.crate.set("rustls-platform-verifier-android")
}

android {
    namespace = "app.opkey"
    compileSdk = 35

    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDir(repository.dir("build/bindings/kotlin"))
            jniLibs.srcDir("src/main/jniLibs")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // UniFFI's Kotlin calls the native library through JNA; the aar brings JNA's own .so.
    implementation("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    api(libs.kotlinx.coroutines.android)
    implementation(libs.rustls.platform.verifier) {
        version { strictly(verifierVersion.get()) }
    }
}
