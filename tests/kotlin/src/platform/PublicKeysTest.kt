package opkey.ffi.tests.platform

import app.opkey.platform.PublicKeyFormatException
import app.opkey.platform.PublicKeyProblem
import app.opkey.platform.PublicKeys
import java.math.BigInteger
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.ECPoint
import java.security.spec.ECPublicKeySpec
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test

/** The phone key's X.509 encoding, as Keystore gives it, becomes the SEC1 point the core sends. */
class PublicKeysTest {
    private fun pair(curve: String = "secp256r1") =
        KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec(curve)) }.generateKeyPair()

    private fun fixed32(n: BigInteger): ByteArray {
        val bytes = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        return ByteArray(32 - bytes.size) + bytes
    }

    private fun problem(bytes: ByteArray): PublicKeyProblem =
        assertFailsWith<PublicKeyFormatException> { PublicKeys.sec1Uncompressed(bytes) }.problem

    @Test
    fun `a P-256 key's X509 encoding becomes 0x04, X and Y`() {
        repeat(20) {
            val public = pair().public as ECPublicKey
            val point = PublicKeys.sec1Uncompressed(public.encoded)
            assertEquals(65, point.size)
            assertContentEquals(byteArrayOf(4) + fixed32(public.w.affineX) + fixed32(public.w.affineY), point)
        }
    }

    @Test
    fun `the point it returns verifies the key's signatures when rebuilt from X and Y`() {
        val keys = pair()
        val point = PublicKeys.sec1Uncompressed(keys.public.encoded)
        val params = (keys.public as ECPublicKey).params
        val rebuilt = KeyFactory.getInstance("EC").generatePublic(
            ECPublicKeySpec(ECPoint(BigInteger(1, point.copyOfRange(1, 33)), BigInteger(1, point.copyOfRange(33, 65))), params),
        )
        val message = "opkey-redeem-v1\nABCD".toByteArray()
        val signature = Signature.getInstance("SHA256withECDSA").run { initSign(keys.private); update(message); sign() }
        assertTrue(Signature.getInstance("SHA256withECDSA").run { initVerify(rebuilt); update(message); verify(signature) })
    }

    @Test
    fun `a key on another curve is refused as not P-256`() {
        assertEquals(PublicKeyProblem.NOT_P256, problem(pair("secp384r1").public.encoded))
    }

    @Test
    fun `an RSA key, a raw point, a truncated or empty encoding are not EC SPKI`() {
        val rsa = KeyPairGenerator.getInstance("RSA").apply { initialize(2048) }.generateKeyPair().public.encoded
        val good = pair().public.encoded
        for (bad in listOf(rsa, PublicKeys.sec1Uncompressed(good), good.copyOf(90), good + 0, ByteArray(0))) {
            assertEquals(PublicKeyProblem.NOT_EC_SPKI, problem(bad))
        }
    }

    @Test
    fun `a compressed point is refused as not uncompressed`() {
        val public = pair().public as ECPublicKey
        val x = fixed32(public.w.affineX)
        val prefix = if (public.w.affineY.testBit(0)) 3 else 2
        val good = public.encoded
        // Same header with the lengths of a 33-byte point.
        val spki = byteArrayOf(0x30, 0x39) + good.copyOfRange(2, 23) + byteArrayOf(0x03, 0x22, 0x00, prefix.toByte()) + x
        assertEquals(PublicKeyProblem.NOT_UNCOMPRESSED, problem(spki))
    }

    @Test
    fun `a point moved off the curve is refused`() {
        val bad = pair().public.encoded.copyOf()
        bad[bad.size - 1] = (bad[bad.size - 1].toInt() xor 1).toByte()
        assertEquals(PublicKeyProblem.NOT_ON_CURVE, problem(bad))
        val outOfRange = pair().public.encoded.copyOf().also { it.fill(0xff.toByte(), 27, 59) }
        assertEquals(PublicKeyProblem.NOT_ON_CURVE, problem(outOfRange))
    }

    @Test
    fun `the error names the problem and never the key bytes`() {
        val e = assertFailsWith<PublicKeyFormatException> { PublicKeys.sec1Uncompressed(pair("secp384r1").public.encoded) }
        assertEquals("not a usable P-256 public key: not p256", e.message)
    }
}
