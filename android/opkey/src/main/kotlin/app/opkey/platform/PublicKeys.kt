/**
 * The phone key's public half as the core wants it. Android Keystore hands out an
 * X.509 SubjectPublicKeyInfo; the core (and PROTOCOL.md §2) speaks SEC1 uncompressed
 * points. Pure JVM: no Android class, so it is tested on the desktop.
 */
package app.opkey.platform

import java.math.BigInteger

/** Why bytes are not a P-256 public key the core can use. */
enum class PublicKeyProblem {
    /** Not the DER of an EC SubjectPublicKeyInfo (wrong length or header). */
    NOT_EC_SPKI,

    /** An EC key on another curve than P-256 (secp256r1). */
    NOT_P256,

    /** The point is compressed or the infinity point. */
    NOT_UNCOMPRESSED,

    /** The coordinates are out of range or not on the curve. */
    NOT_ON_CURVE,
}

/** Thrown by [PublicKeys.sec1Uncompressed]; carries no key bytes. */
class PublicKeyFormatException(val problem: PublicKeyProblem) :
    IllegalArgumentException("not a usable P-256 public key: ${problem.name.lowercase().replace('_', ' ')}")

object PublicKeys {
    /** OID id-ecPublicKey: the algorithm of every EC key, whatever its curve. */
    private val EC_ALGORITHM = hex("06072a8648ce3d0201")
    private val P256_OID = hex("06082a8648ce3d030107")
    private const val ALGORITHM_AT = 4
    private const val CURVE_AT = 13
    private const val BIT_STRING_AT = 23
    private const val POINT_AT = 26

    private val P = BigInteger("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", 16)
    private val B = BigInteger("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b", 16)

    /**
     * The 65-byte `0x04 ‖ X ‖ Y` point inside a P-256 SubjectPublicKeyInfo (what
     * `PublicKey.getEncoded()` returns for an EC key), after checking that the point lies
     * on the curve. Throws [PublicKeyFormatException] for anything else.
     *
     * Layout: `30 len | 30 13 <id-ecPublicKey> <curve OID> | 03 len 00 | point`.
     */
    fun sec1Uncompressed(x509: ByteArray): ByteArray {
        val ecKey = x509.size in POINT_AT + 1..127 &&
            x509[0] == 0x30.toByte() && x509[1].toInt() == x509.size - 2 && x509[2] == 0x30.toByte() &&
            x509.startsWith(EC_ALGORITHM, ALGORITHM_AT)
        if (!ecKey) throw PublicKeyFormatException(PublicKeyProblem.NOT_EC_SPKI)
        if (!x509.startsWith(P256_OID, CURVE_AT)) throw PublicKeyFormatException(PublicKeyProblem.NOT_P256)
        val bitString = x509[3].toInt() == CURVE_AT + P256_OID.size - ALGORITHM_AT &&
            x509[BIT_STRING_AT] == 0x03.toByte() &&
            x509[BIT_STRING_AT + 1].toInt() == x509.size - BIT_STRING_AT - 2 &&
            x509[BIT_STRING_AT + 2] == 0.toByte()
        if (!bitString) throw PublicKeyFormatException(PublicKeyProblem.NOT_EC_SPKI)
        val point = x509.copyOfRange(POINT_AT, x509.size)
        if (point.size != 65 || point[0] != 4.toByte()) throw PublicKeyFormatException(PublicKeyProblem.NOT_UNCOMPRESSED)
        val x = BigInteger(1, point.copyOfRange(1, 33))
        val y = BigInteger(1, point.copyOfRange(33, 65))
        if (x >= P || y >= P || !onCurve(x, y)) throw PublicKeyFormatException(PublicKeyProblem.NOT_ON_CURVE)
        return point
    }

    /** y² = x³ − 3x + b (mod p). */
    private fun onCurve(x: BigInteger, y: BigInteger): Boolean {
        val left = y.multiply(y).mod(P)
        val right = x.pow(3).subtract(x.multiply(BigInteger.valueOf(3))).add(B).mod(P)
        return left == right
    }

    private fun ByteArray.startsWith(prefix: ByteArray, at: Int): Boolean =
        size >= at + prefix.size && prefix.indices.all { this[at + it] == prefix[it] }

    private fun hex(s: String): ByteArray = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}
