package opkey.ffi.tests

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.CancelHandle
import uniffi.opkey_ffi.ChangeEvent
import uniffi.opkey_ffi.OpKeyException

/**
 * Long calls stop through a [CancelHandle] (Swift task cancellation does not reach Rust),
 * and when a Kotlin coroutine stops waiting; the phone's store stays as it was.
 */
class CancelTest {
    private val backend = Backend.shared

    /** A phone enrolled and synced against the shared backend, reopened against [serverUrl]. */
    private fun enrolledPhoneTalkingTo(serverUrl: String) = runBlocking {
        val machine = backend.createMachine("Loader L-${System.nanoTime()}")
        val (operatorId, link) = backend.inviteOperator("Ane Vik")
        backend.createKey(operatorId, machine, "first")
        val config = phoneConfig()
        val secrets = MemorySecretStore()
        val signer = JcaSigner()
        openPhone(config, signer, secrets).use { phone ->
            phone.redeemInvite(link)
            phone.sync()
        }
        backend.createKey(operatorId, machine, "second, never fetched")
        openPhone(config.copy(serverUrl = serverUrl, requestTimeoutMs = 60_000u), signer, secrets)
    }

    @Test
    fun `a sync cancelled while the server does not answer throws Cancelled and leaves the store as it was`() = runBlocking {
        SilentServer().use { silent ->
            val phone = enrolledPhoneTalkingTo(silent.url)
            val before = phone.status()
            val listener = RecordingListener()
            phone.subscribe(listener)

            val cancel = CancelHandle()
            val sync = async(Dispatchers.IO) { runCatching { phone.sync(cancel) } }
            assertTrue(silent.awaitConnection(), "the sync reached the silent server")
            cancel.cancel()
            val error = sync.await().exceptionOrNull()
            assertTrue(error is OpKeyException.Cancelled, "expected Cancelled, got $error")
            assertTrue(cancel.isCancelled())

            assertTrue(listener.awaitSyncEnd())
            assertTrue(assertIs<ChangeEvent.SyncFailed>(listener.events.last()).cancelled)
            val after = phone.status()
            assertEquals(before.cursor, after.cursor)
            assertEquals(before.lastSyncAt, after.lastSyncAt)
            assertEquals(listOf("first"), phone.keys().map { it.description })
            phone.close()
        }
    }

    @Test
    fun `a handle cancelled beforehand stops the sync before it starts`() = runBlocking {
        SilentServer().use { silent ->
            val phone = enrolledPhoneTalkingTo(silent.url)
            val cancel = CancelHandle().apply { cancel() }
            assertFailsWith<OpKeyException.Cancelled> { phone.sync(cancel) }
            assertFalse(silent.awaitConnectionBriefly(), "no request was sent")
            phone.close()
        }
    }

    @Test
    fun `a redeem cancelled while the server hangs leaves the invite for a later try`() = runBlocking {
        val (_, link) = backend.inviteOperator("Ida Moe")
        SilentServer().use { silent ->
            val hanging = silent.url.trimEnd('/') + "/i/" + link.substringAfterLast("/i/")
            val phone = openPhone(phoneConfig(requestTimeoutMs = 60_000u))
            val cancel = CancelHandle()
            val redeem = async(Dispatchers.IO) { runCatching { phone.redeemInvite(hanging, cancel) } }
            assertTrue(silent.awaitConnection())
            cancel.cancel()
            val error = redeem.await().exceptionOrNull()
            assertTrue(error is OpKeyException.Cancelled, "expected Cancelled, got $error")
            val status = phone.status()
            assertFalse(status.enrolled)
            assertFalse(status.pendingInvite)

            assertEquals(backend.url + "/", phone.redeemInvite(link).serverUrl)
            phone.close()
        }
    }

    @Test
    fun `cancelling the Kotlin coroutine stops the Rust work too`() = runBlocking {
        SilentServer().use { silent ->
            val phone = enrolledPhoneTalkingTo(silent.url)
            val sync = async(Dispatchers.IO) { phone.sync() }
            assertTrue(silent.awaitConnection())
            sync.cancel()
            assertTrue(silent.clientHungUp(), "the core dropped its request when the coroutine was cancelled")
            assertEquals(listOf("first"), phone.keys().map { it.description })
            phone.close()
        }
    }
}
