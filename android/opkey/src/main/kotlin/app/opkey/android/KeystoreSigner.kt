/**
 * [KeystoreSigner]: the phone's P-256 key in Android Keystore (StrongBox when the phone
 * has one), non-exportable, for signing only. The core sees the public key as a SEC1 point
 * ([PublicKeys]) and DER signatures; never the private key. Keystore failures become
 * typed [PlatformException]s: an invalidated or unreadable key is KeyInvalidated (the core
 * then asks for a new invite), anything passing is Unavailable.
 */
package app.opkey.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import app.opkey.platform.PublicKeyFormatException
import app.opkey.platform.PublicKeys
import java.security.GeneralSecurityException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.KeyStoreException
import java.security.ProviderException
import java.security.Signature
import java.security.UnrecoverableKeyException
import java.security.spec.ECGenParameterSpec
import uniffi.opkey_ffi.PlatformException
import uniffi.opkey_ffi.Signer

class KeystoreSigner(context: Context, private val alias: String = ALIAS) : Signer {
    companion object {
        const val ALIAS = "opkey.phone-key"
        internal const val PROVIDER = "AndroidKeyStore"
    }

    private val strongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    /** Creates the key on first use (the redeem asks for the public key first). */
    override fun publicKey(): ByteArray = keystore {
        val entry = entry() ?: create()
        try {
            PublicKeys.sec1Uncompressed(entry.certificate.publicKey.encoded)
        } catch (e: PublicKeyFormatException) {
            throw PlatformException.Unexpected("Keystore returned an unusable phone key (${e.problem})")
        }
    }

    override fun sign(message: ByteArray): ByteArray = keystore {
        val entry = entry() ?: throw PlatformException.KeyInvalidated("the phone key is gone from Keystore")
        Signature.getInstance("SHA256withECDSA").run {
            initSign(entry.privateKey)
            update(message)
            sign()
        }
    }

    /** Forgets the key (after the core erased its local data); the next redeem makes a new one. */
    fun delete() = keystore { KeyStore.getInstance(PROVIDER).apply { load(null) }.deleteEntry(alias) }

    private fun entry(): KeyStore.PrivateKeyEntry? =
        KeyStore.getInstance(PROVIDER).apply { load(null) }.getEntry(alias, null) as? KeyStore.PrivateKeyEntry

    @Synchronized
    private fun create(): KeyStore.PrivateKeyEntry {
        entry()?.let { return it }
        try {
            generate(strongBox)
        } catch (e: StrongBoxUnavailableException) {
            generate(false)
        }
        return entry() ?: throw PlatformException.Unavailable("Keystore did not keep the new phone key")
    }

    private fun generate(inStrongBox: Boolean) {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .apply { if (inStrongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) setIsStrongBoxBacked(true) }
            .build()
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, PROVIDER).run {
            initialize(spec)
            generateKeyPair()
        }
    }

    /** Keystore's exceptions as the core's platform errors; none carries key material. */
    private fun <T> keystore(step: () -> T): T = try {
        step()
    } catch (e: PlatformException) {
        throw e
    } catch (e: KeyPermanentlyInvalidatedException) {
        throw PlatformException.KeyInvalidated("the phone key was invalidated by Android")
    } catch (e: UnrecoverableKeyException) {
        throw PlatformException.KeyInvalidated("the phone key can no longer be read from Keystore")
    } catch (e: KeyStoreException) {
        throw PlatformException.Unavailable("Keystore is unavailable (${e.javaClass.simpleName})")
    } catch (e: GeneralSecurityException) {
        throw PlatformException.Unexpected("Keystore failed (${e.javaClass.simpleName})")
    } catch (e: ProviderException) {
        throw PlatformException.Unavailable("Keystore failed (${e.javaClass.simpleName})")
    }
}
