package opkey.ffi.tests.platform

import app.opkey.platform.WrappedSecretStore
import java.io.File
import java.nio.file.Files
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import opkey.ffi.tests.Backend
import opkey.ffi.tests.JcaSigner
import opkey.ffi.tests.phoneConfig
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.OpKey
import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.PlatformException

/**
 * The Android secret store's file format and failure mapping, with a software AES key
 * standing in for the Keystore key: what is sealed opens only under the same key and the
 * same name, every save draws a new IV, and a damaged file is KeyInvalidated.
 */
class WrappedSecretStoreTest {
    private fun aesKey(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    private fun folder(): File = Files.createTempDirectory("opkey-sealed").toFile()
    private val secret = ByteArray(32) { (it * 7 + 3).toByte() }

    @Test
    fun `a saved value loads back, is not in the file in the clear, and a missing one is null`() {
        val dir = folder()
        val key = aesKey()
        val store = WrappedSecretStore(dir, { key })
        assertNull(store.load("opkey.data-key"))
        store.save("opkey.data-key", secret)
        assertContentEquals(secret, store.load("opkey.data-key"))
        assertContentEquals(secret, WrappedSecretStore(dir, { key }).load("opkey.data-key"), "a new instance reads the file")
        val file = File(dir, "opkey.data-key.sealed")
        val bytes = file.readBytes()
        assertEquals(4 + 12 + 32 + 16, bytes.size, "magic, IV, ciphertext, tag")
        assertFalse(bytes.toList().windowed(8).any { it == secret.copyOf(8).toList() }, "no plaintext run in the file")
        assertEquals(listOf("opkey.data-key.sealed"), dir.list()!!.toList(), "no temp file is left behind")
    }

    @Test
    fun `every save draws a fresh IV, so the same value never seals to the same bytes`() {
        val dir = folder()
        val store = WrappedSecretStore(dir, aesKey().let { k -> { k } })
        val ivs = (1..20).map {
            store.save("k", secret)
            File(dir, "k.sealed").readBytes().copyOfRange(4, 16).toList()
        }
        assertEquals(20, ivs.toSet().size)
    }

    @Test
    fun `saving again replaces the value and delete forgets it, also when it is already gone`() {
        val store = WrappedSecretStore(folder(), aesKey().let { k -> { k } })
        store.save("k", byteArrayOf(1))
        store.save("k", byteArrayOf(2, 3))
        assertContentEquals(byteArrayOf(2, 3), store.load("k"))
        store.delete("k")
        assertNull(store.load("k"))
        store.delete("k")
        store.delete("never-saved")
    }

    @Test
    fun `a flipped bit anywhere in the file is KeyInvalidated, never wrong bytes`() {
        val dir = folder()
        val store = WrappedSecretStore(dir, aesKey().let { k -> { k } })
        store.save("opkey.data-key", secret)
        val file = File(dir, "opkey.data-key.sealed")
        val good = file.readBytes()
        for (i in good.indices) {
            file.writeBytes(good.copyOf().also { it[i] = (it[i].toInt() xor 0x10).toByte() })
            assertFailsWith<PlatformException.KeyInvalidated>("byte $i") { store.load("opkey.data-key") }
        }
        for (cut in listOf(0, 3, 16, good.size - 1)) {
            file.writeBytes(good.copyOf(cut))
            assertFailsWith<PlatformException.KeyInvalidated>("cut at $cut") { store.load("opkey.data-key") }
        }
    }

    @Test
    fun `a new wrapping key (the Keystore key was replaced) cannot open the old file`() {
        val dir = folder()
        WrappedSecretStore(dir, aesKey().let { k -> { k } }).save("opkey.data-key", secret)
        val e = assertFailsWith<PlatformException.KeyInvalidated> {
            WrappedSecretStore(dir, aesKey().let { k -> { k } }).load("opkey.data-key")
        }
        assertFalse(e.message.orEmpty().contains(secret.joinToString()), "no value in the message")
    }

    @Test
    fun `a file copied under another name does not open there`() {
        val dir = folder()
        val store = WrappedSecretStore(dir, aesKey().let { k -> { k } })
        store.save("a", secret)
        File(dir, "a.sealed").copyTo(File(dir, "b.sealed"))
        assertFailsWith<PlatformException.KeyInvalidated> { store.load("b") }
        assertContentEquals(secret, store.load("a"))
    }

    @Test
    fun `a key that is no longer usable is KeyInvalidated and a failing key store is Unavailable`() {
        val dir = folder()
        val good = aesKey()
        WrappedSecretStore(dir, { good }).save("k", secret)
        // A 7-byte "AES" key: the cipher refuses it with an InvalidKeyException, as Android does an invalidated one.
        val wrongType = javax.crypto.spec.SecretKeySpec(ByteArray(7), "AES")
        assertFailsWith<PlatformException.KeyInvalidated> { WrappedSecretStore(dir, { wrongType }).load("k") }
        val locked = WrappedSecretStore(dir) { throw java.security.KeyStoreException("keystore locked") }
        assertFailsWith<PlatformException.Unavailable> { locked.load("k") }
        assertFailsWith<PlatformException.Unavailable> { locked.save("k", secret) }
    }

    @Test
    fun `names that are not plain file names are refused before touching the disk`() {
        val dir = folder()
        val store = WrappedSecretStore(dir, aesKey().let { k -> { k } })
        for (bad in listOf("", ".", "..", "../escape", "a/b", ".hidden", "x".repeat(65), "naïve", "a b")) {
            assertFailsWith<PlatformException.Unexpected>(bad) { store.save(bad, secret) }
            assertFailsWith<PlatformException.Unexpected>(bad) { store.load(bad) }
        }
        store.save("x".repeat(64), secret)
        store.save("A-z_0.9", secret)
        assertEquals(2, dir.list()!!.size)
        assertFalse(File(dir.parentFile, "escape.sealed").exists())
    }

    @Test
    fun `a real phone keeps its data key here, reopens with it, and reports a replaced key as a data key mismatch`() = runBlocking {
        val backend = Backend.shared
        val (_, link) = backend.inviteOperator("Keystore Operator")
        val sealed = folder()
        val config = phoneConfig()
        val key = aesKey()
        val signer = JcaSigner()
        val phone = OpKey(config, WrappedSecretStore(sealed, { key }), signer)
        phone.redeemInvite(link)
        val phoneId = phone.status().phoneId
        phone.close()
        val dataKey = WrappedSecretStore(sealed, { key }).load("opkey.data-key")
        assertEquals(32, dataKey?.size, "the core's data key went through the wrapped store")
        assertTrue(File(sealed, "opkey.data-key.sealed").exists())

        val again = OpKey(config, WrappedSecretStore(sealed, { key }), signer)
        assertTrue(again.status().enrolled, "the same wrapping key reopens the enrolment")
        assertEquals(phoneId, again.status().phoneId)
        again.close()

        val e = assertFailsWith<OpKeyException> { OpKey(config, WrappedSecretStore(sealed, { aesKey() }), signer) }
        assertIs<OpKeyException.DataKeyMismatch>(e, "got ${e::class.simpleName}: ${e.message}")
        assertFalse(e.message.orEmpty().isEmpty(), "the core says what to do")
    }
}
