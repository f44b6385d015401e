package opkey.ffi.tests

import kotlinx.coroutines.runBlocking
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.InviteProblem
import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.PlatformException
import uniffi.opkey_ffi.SecretStore
import uniffi.opkey_ffi.Signer

/** Every failure reaches Kotlin as a typed exception with a reason the app can show. */
class ErrorsTest {
    private val backend = Backend.shared

    @Test
    fun `a bad link is refused with a typed reason before any network`() = runBlocking {
        val phone = openPhone()
        val foreign = assertFailsWith<OpKeyException.InvalidInvite> { phone.parseInvite("https://evil.example.net/i/abc") }
        assertEquals(InviteProblem.FOREIGN_HOST, foreign.kind)
        assertContains(foreign.reason, "evil.example.net")

        val mail = assertFailsWith<OpKeyException.InvalidInvite> { phone.redeemInvite("mailto:ola@example.com") }
        assertEquals(InviteProblem.WRONG_SCHEME, mail.kind)
        val elsewhere = assertFailsWith<OpKeyException.InvalidInvite> { phone.redeemInvite("opkey://elsewhere/abc") }
        assertEquals(InviteProblem.MALFORMED_LINK, elsewhere.kind)
        assertEquals(InviteProblem.EMPTY, assertFailsWith<OpKeyException.InvalidInvite> { phone.redeemInvite("  ") }.kind)
        phone.close()
    }

    @Test
    fun `an invite already used by another phone says so`() = runBlocking {
        val (_, link) = backend.inviteOperator("Nils Berg")
        openPhone().use { it.redeemInvite(link) }
        openPhone().use { second ->
            val e = assertFailsWith<OpKeyException.InviteAlreadyUsed> { second.redeemInvite(link) }
            assertTrue(e.reason.isNotBlank())
        }
    }

    @Test
    fun `asking before enrolling or for an unknown key gives typed exceptions`() = runBlocking {
        val phone = openPhone()
        assertFailsWith<OpKeyException.NotEnrolled> { phone.sync() }
        assertEquals("key_nope", assertFailsWith<OpKeyException.KeyNotFound> { phone.key("key_nope") }.id)
        phone.close()
    }

    @Test
    fun `a server that is down is a Network exception and the keys still work offline`() = runBlocking {
        val down = Backend.start()
        val machine = down.createMachine("Crane C-1")
        val (operatorId, link) = down.inviteOperator("Eva Lund")
        val (_, unused) = down.inviteOperator("Jon Lund")
        down.createKey(operatorId, machine, "yard")
        val phone = openPhone()
        phone.redeemInvite(link)
        phone.sync()
        down.close()

        val e = assertFailsWith<OpKeyException.Network> { phone.sync() }
        assertContains(e.reason, "offline")
        assertEquals(1, phone.keys().size, "keys are read from the phone's store")
        assertFailsWith<OpKeyException.Network> { openPhone().use { it.redeemInvite(unused) } }
        phone.close()
    }

    @Test
    fun `a secret store that throws is a typed exception, not a crash`() {
        val undeclared = object : SecretStore {
            override fun load(name: String): ByteArray? = throw IllegalStateException("keystore is locked")
            override fun save(name: String, value: ByteArray) = throw IllegalStateException("keystore is locked")
            override fun delete(name: String) = Unit
        }
        val e = assertFailsWith<OpKeyException.SecretStore> { openPhone(secrets = undeclared) }
        assertContains(e.reason, "keystore is locked")

        val declared = object : SecretStore {
            override fun load(name: String): ByteArray? = throw PlatformException.Unavailable("device is locked")
            override fun save(name: String, value: ByteArray) = Unit
            override fun delete(name: String) = Unit
        }
        assertContains(assertFailsWith<OpKeyException.SecretStore> { openPhone(secrets = declared) }.reason, "device is locked")
    }

    @Test
    fun `a signer that fails is a typed exception, and a lost key asks to re-enroll`() = runBlocking {
        val lost = object : Signer {
            override fun publicKey(): ByteArray = throw PlatformException.KeyInvalidated("lock screen removed")
            override fun sign(message: ByteArray): ByteArray = throw PlatformException.KeyInvalidated("lock screen removed")
        }
        val broken = object : Signer {
            private val real = JcaSigner()
            override fun publicKey(): ByteArray = real.publicKey()
            override fun sign(message: ByteArray): ByteArray = throw UnsupportedOperationException("no StrongBox")
        }
        val (_, link) = backend.inviteOperator("Siri Dahl")
        openPhone(signer = lost).use { phone ->
            assertContains(assertFailsWith<OpKeyException.PhoneKeyLost> { phone.redeemInvite(link) }.reason, "lock screen removed")
        }
        openPhone(signer = broken).use { phone ->
            assertContains(assertFailsWith<OpKeyException.Signer> { phone.redeemInvite(link) }.reason, "no StrongBox")
        }
        // Neither attempt used up the invite.
        openPhone().use { it.redeemInvite(link) }
    }
}
