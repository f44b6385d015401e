/**
 * [WrappedSecretStore]: the core's [SecretStore] as files sealed with AES-256-GCM under a
 * key the platform guards (on Android a non-exportable Keystore key; in tests a software
 * key). Owns the file format, the atomic write and the mapping of failures onto
 * [PlatformException]. Pure JVM; never logs, and no error carries a value.
 *
 * File `<dir>/<name>.sealed`: `"OKS1" ‖ iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, with
 * the entry's name bound as additional data, so a file copied to another name does not
 * open.
 */
package app.opkey.platform

import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.nio.file.AtomicMoveNotSupportedException
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.security.GeneralSecurityException
import java.security.InvalidKeyException
import java.security.UnrecoverableKeyException
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import uniffi.opkey_ffi.PlatformException
import uniffi.opkey_ffi.SecretStore

class WrappedSecretStore(
    private val dir: File,
    private val wrappingKey: () -> SecretKey,
) : SecretStore {
    companion object {
        private val MAGIC = "OKS1".toByteArray(Charsets.US_ASCII)
        const val IV_BYTES = 12
        const val TAG_BITS = 128
        /** Safe as a file name everywhere; no leading dot (the core's own rule), so never `.` or `..`. */
        private val NAME = Regex("[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
        private const val SUFFIX = ".sealed"

        /** What the tag authenticates besides the value: the format and the entry's name. */
        private fun aad(name: String): ByteArray = "opkey.secret-store.v1\n$name".toByteArray(Charsets.UTF_8)
    }

    override fun load(name: String): ByteArray? {
        val file = fileFor(name)
        val sealed = try {
            if (!file.exists()) return null
            file.readBytes()
        } catch (e: IOException) {
            throw PlatformException.Unavailable("the secret '$name' could not be read (${e.javaClass.simpleName})")
        }
        if (sealed.size < MAGIC.size + IV_BYTES + TAG_BITS / 8 || !sealed.copyOf(MAGIC.size).contentEquals(MAGIC)) {
            throw PlatformException.KeyInvalidated("the secret '$name' is damaged")
        }
        val iv = sealed.copyOfRange(MAGIC.size, MAGIC.size + IV_BYTES)
        return crypto(name, "opened") {
            Cipher.getInstance("AES/GCM/NoPadding").run {
                init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(TAG_BITS, iv))
                updateAAD(aad(name))
                doFinal(sealed, MAGIC.size + IV_BYTES, sealed.size - MAGIC.size - IV_BYTES)
            }
        }
    }

    override fun save(name: String, value: ByteArray) {
        val file = fileFor(name)
        // No IV is passed in: the provider draws a fresh random one for every encryption
        // (Keystore insists on that for its GCM keys; the JDK does the same).
        val sealed = crypto(name, "sealed") {
            Cipher.getInstance("AES/GCM/NoPadding").run {
                init(Cipher.ENCRYPT_MODE, wrappingKey())
                updateAAD(aad(name))
                val body = doFinal(value)
                check(iv.size == IV_BYTES) { "the cipher chose a ${iv.size}-byte IV" }
                MAGIC + iv + body
            }
        }
        try {
            writeAtomically(file, sealed)
        } catch (e: IOException) {
            throw PlatformException.Unavailable("the secret '$name' could not be written (${e.javaClass.simpleName})")
        }
    }

    override fun delete(name: String) {
        val file = fileFor(name)
        try {
            Files.deleteIfExists(file.toPath())
        } catch (e: IOException) {
            throw PlatformException.Unavailable("the secret '$name' could not be deleted (${e.javaClass.simpleName})")
        }
    }

    private fun fileFor(name: String): File {
        if (!NAME.matches(name)) {
            throw PlatformException.Unexpected(
                "'${name.take(64)}' is not a secret name (1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot)",
            )
        }
        return File(dir, name + SUFFIX)
    }

    /** Runs a cipher step; a key that is gone or a tag that does not match is KeyInvalidated. */
    private fun <T> crypto(name: String, verb: String, step: () -> T): T = try {
        step()
    } catch (e: PlatformException) {
        throw e
    } catch (e: AEADBadTagException) {
        throw PlatformException.KeyInvalidated("the secret '$name' could not be $verb: its key changed or the file was altered")
    } catch (e: InvalidKeyException) {
        // Android's KeyPermanentlyInvalidatedException is an InvalidKeyException.
        throw PlatformException.KeyInvalidated("the key protecting '$name' is no longer valid (${e.javaClass.simpleName})")
    } catch (e: UnrecoverableKeyException) {
        throw PlatformException.KeyInvalidated("the key protecting '$name' cannot be recovered")
    } catch (e: GeneralSecurityException) {
        throw PlatformException.Unavailable("the secret '$name' could not be $verb (${e.javaClass.simpleName})")
    } catch (e: IllegalStateException) {
        throw PlatformException.Unexpected("the secret '$name' could not be $verb (${e.message})")
    }

    /** Temp file in the same folder, flushed to disk, then renamed over the old one. */
    private fun writeAtomically(file: File, bytes: ByteArray) {
        Files.createDirectories(dir.toPath())
        val temp = File.createTempFile(file.name, ".tmp", dir)
        try {
            FileOutputStream(temp).use { out ->
                out.write(bytes)
                out.fd.sync()
            }
            try {
                Files.move(temp.toPath(), file.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
            } catch (_: AtomicMoveNotSupportedException) {
                Files.move(temp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING)
            }
        } finally {
            temp.delete()
        }
    }
}
