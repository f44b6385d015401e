/**
 * [OpKeyClient.syncState] as the core's change events and a sync's progress drive it, and
 * coroutine cancellation of [OpKeyClient.sync] reaching the Rust work: against the real
 * backend, a server that never answers, and a port where nothing listens.
 */
package opkey.ffi.tests.client

import app.opkey.OpKeyClient
import app.opkey.SyncState
import app.opkey.reason
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import opkey.ffi.tests.SilentServer
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.SyncProgress

class SyncStateTest {
    /** A phone enrolled and synced with one key, and a second key created after that sync. */
    private fun syncedPhone(name: String): EnrolledPhone = runBlocking {
        val phone = EnrolledPhone(name = name)
        phone.backend.createKey(phone.operatorId, phone.machineId, "first")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        client.sync()
        client.close()
        client.core.close()
        phone.backend.createKey(phone.operatorId, phone.machineId, "second, never fetched")
        phone
    }

    @Test
    fun `a sync is Running, then Done with the report the call returned`() = runBlocking {
        val phone = EnrolledPhone(name = "Siv State")
        phone.backend.createKey(phone.operatorId, phone.machineId, "first")
        val client = OpKeyClient(phone.open())
        assertEquals(SyncState.Idle, client.syncState.value)
        client.redeem(phone.link)

        val states = client.syncState.recordIn(this)
        states.awaitMatching { it == SyncState.Idle }
        val report = client.sync()
        assertEquals(1u, report.upserted)
        assertEquals(SyncState.Done(report), client.syncState.value, "Done as soon as sync() returns")
        states.awaitMatching { it == SyncState.Done(report) }
        states.stop()
        client.close()
        client.core.close()
    }

    @Test
    fun `a sync against a server that never answers stays Running with its progress`() = runBlocking {
        val phone = syncedPhone("Rune Running")
        SilentServer().use { silent ->
            val client = OpKeyClient(phone.open(serverUrl = silent.url))
            val states = client.syncState.recordIn(this)
            val sync = launch(Dispatchers.Default) { client.sync() }
            assertTrue(silent.awaitConnection(), "the sync reached the silent server")
            val running = assertIs<SyncState.Running>(states.awaitMatching { it is SyncState.Running && it.progress != null })
            assertEquals(SyncProgress.Fetching(page = 1u, keysSoFar = 0u), running.progress)
            assertIs<SyncState.Running>(client.syncState.value, "still running while the server is silent")

            withTimeout(10.seconds) { sync.cancelAndJoin() }
            states.stop()
            client.close()
            client.core.close()
        }
    }

    @Test
    fun `cancelling the coroutine running sync cancels the Rust work and the state says Failed, cancelled`() =
        runBlocking {
            val phone = syncedPhone("Kasper Cancel")
            SilentServer().use { silent ->
                val client = OpKeyClient(phone.open(serverUrl = silent.url))
                val sync = launch(Dispatchers.Default) { client.sync() }
                assertTrue(silent.awaitConnection())

                withTimeout(10.seconds) { sync.cancelAndJoin() }
                // sync() returns only once the core has stopped: its last event is already in.
                val failed = assertIs<SyncState.Failed>(client.syncState.value)
                assertTrue(failed.cancelled, "a cancel, not a failure: $failed")
                assertTrue(silent.clientHungUp(), "the core dropped its request when the coroutine was cancelled")
                assertEquals(listOf("first"), client.core.keys().map { it.description }, "the store is as it was")
                client.close()
                client.core.close()
            }
        }

    @Test
    fun `a sync with the server down throws the core's error and the state is Failed, not cancelled`() =
        runBlocking {
            val phone = syncedPhone("Dag Down")
            val client = OpKeyClient(phone.open(serverUrl = refusingUrl()))
            val error = assertFailsWith<OpKeyException> { client.sync() }
            assertTrue(error is OpKeyException.Network || error is OpKeyException.Timeout, "got $error")
            val failed = assertIs<SyncState.Failed>(client.syncState.value)
            assertFalse(failed.cancelled)
            assertTrue(failed.reason.isNotBlank())
            assertTrue(error.reason.isNotBlank(), "the core's sentence for the operator")
            assertEquals(listOf("first"), client.core.keys().map { it.description })
            client.close()
            client.core.close()
        }
}
