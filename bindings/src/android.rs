//! Android only: the one JNI entry point the Kotlin shell calls before the core touches
//! the network. The core's HTTPS client verifies certificates with Android's own trust
//! manager (rustls-platform-verifier), which needs the app's `Context` and the JVM.
//!
//! Kotlin side: `app.opkey.android.OpKeyAndroid.initTls(context)` (android/README.md).

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JObject};

/// `external fun initTls(context: Context)` on `app.opkey.android.OpKeyAndroid`. Safe to
/// call more than once; a JNI failure becomes a `RuntimeException` in Kotlin.
#[jni::jni_mangle("app.opkey.android.OpKeyAndroid")]
pub fn init_tls<'caller>(mut env: EnvUnowned<'caller>, _class: JClass<'caller>, context: JObject<'caller>) {
    env.with_env(|env| rustls_platform_verifier::android::init_with_env(env, context))
        .resolve::<ThrowRuntimeExAndDefault>();
}
