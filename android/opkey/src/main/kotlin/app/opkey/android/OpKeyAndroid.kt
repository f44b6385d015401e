/**
 * [OpKeyAndroid]: how an Android app opens the core. Loads `libopkey_ffi.so` (the same
 * library JNA binds as "opkey_ffi"), hands the application Context to the core once so its
 * TLS verifier (rustls-platform-verifier) can use Android's trust store, and builds the
 * [OpKey] with the Keystore-backed secret store and signer, wrapped in [OpKeyClient].
 */
package app.opkey.android

import android.content.Context
import android.os.Build
import app.opkey.OpKeyClient
import java.io.File
import uniffi.opkey_ffi.OpKey
import uniffi.opkey_ffi.OpKeyConfig
import uniffi.opkey_ffi.eraseLocalData

object OpKeyAndroid {
    private var ready = false

    /** Implemented in Rust (bindings, Android only): initialises the platform verifier. */
    @JvmStatic
    external fun initTls(context: Context)

    /** The settings for this app: data in `noBackupFilesDir/opkey`, the phone's model as its name. */
    fun config(context: Context, serverUrl: String?, inviteHosts: List<String>): OpKeyConfig {
        val dir = File(context.applicationContext.noBackupFilesDir, "opkey")
        return OpKeyConfig(
            dataDir = dir.path,
            serverUrl = serverUrl,
            inviteHosts = inviteHosts,
            allowLoopbackInvites = false,
            deviceName = Build.MODEL,
            requestTimeoutMs = 15_000u,
            networkAttempts = 4u,
        )
    }

    /** Opens the core; call once per process (the app keeps the client). */
    fun open(context: Context, serverUrl: String?, inviteHosts: List<String>): OpKeyClient {
        val app = context.applicationContext
        prepare(app)
        val core = OpKey(config(app, serverUrl, inviteHosts), KeystoreSecretStore(app), KeystoreSigner(app))
        return OpKeyClient(core)
    }

    /**
     * Removes the phone's local data and its phone key, after the core reported a data key
     * mismatch or a lost phone key; the client must be closed first. A new invite enrolls again.
     */
    fun erase(context: Context, serverUrl: String?, inviteHosts: List<String>) {
        val app = context.applicationContext
        prepare(app)
        eraseLocalData(config(app, serverUrl, inviteHosts), KeystoreSecretStore(app))
        KeystoreSigner(app).delete()
    }

    @Synchronized
    private fun prepare(app: Context) {
        if (ready) return
        System.loadLibrary("opkey_ffi")
        initTls(app)
        ready = true
    }
}
