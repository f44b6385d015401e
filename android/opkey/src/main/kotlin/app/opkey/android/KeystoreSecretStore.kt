/**
 * [KeystoreSecretStore]: the core's secret store on Android. A non-exportable AES-256-GCM
 * key in Android Keystore wraps each value into a file under `noBackupFilesDir` (never in
 * a backup: a restored file could not be opened without the key anyway). The file format,
 * atomic writes and error mapping are [WrappedSecretStore]'s (pure, tested on the
 * desktop); this class only supplies the Keystore key.
 */
package app.opkey.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import app.opkey.platform.WrappedSecretStore
import java.io.File
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import uniffi.opkey_ffi.SecretStore

class KeystoreSecretStore private constructor(store: WrappedSecretStore) : SecretStore by store {
    companion object {
        const val ALIAS = "opkey.secret-wrap"

        /** The folder that holds the wrapped files. */
        fun folder(context: Context): File = File(context.applicationContext.noBackupFilesDir, "opkey-secrets")

        /** Loads the wrapping key, creating it the first time. */
        @Synchronized
        private fun wrappingKey(alias: String): SecretKey {
            val keyStore = KeyStore.getInstance(KeystoreSigner.PROVIDER).apply { load(null) }
            (keyStore.getKey(alias, null) as? SecretKey)?.let { return it }
            val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                // Keystore then draws every IV itself, which WrappedSecretStore relies on.
                .setRandomizedEncryptionRequired(true)
                .build()
            return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KeystoreSigner.PROVIDER).run {
                init(spec)
                generateKey()
            }
        }
    }

    constructor(context: Context, alias: String = ALIAS) :
        this(WrappedSecretStore(folder(context)) { wrappingKey(alias) })
}
