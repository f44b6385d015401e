/**
 * [OpKeyClient.home] and [OpKeyClient.keys] against the real backend: each emits the
 * current value first, then again after the changes a redeem and a sync bring, and ends
 * when the client is closed.
 */
package opkey.ffi.tests.client

import app.opkey.OpKeyClient
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.ChangeEvent
import uniffi.opkey_ffi.Stage

class HomeAndKeysTest {
    @Test
    fun `home goes from Welcome to Keys through a redeem and a sync, and follows a sync that adds a key`() =
        runBlocking {
            val phone = EnrolledPhone(name = "Hanne Home")
            phone.backend.createKey(phone.operatorId, phone.machineId, "first")
            val client = OpKeyClient(phone.open())
            val homes = client.home().recordIn(this)

            val welcome = homes.awaitMatching { true }
            assertEquals(Stage.WELCOME, welcome.stage, "the first value is the current screen")
            assertTrue(welcome.message.isNotBlank())
            assertNull(welcome.lastSyncAt)

            client.redeem(phone.link)
            homes.awaitMatching { it.stage == Stage.KEYS }
            client.sync()
            val synced = homes.awaitMatching { it.keyCount == 1u }
            assertEquals(Stage.KEYS, synced.stage)
            assertEquals(1u, synced.usableKeyCount)
            assertNotNull(synced.lastSyncAt, "the sync status line has its time")
            assertEquals(client.core.homeGuide(), synced, "the core's guide, as it is")

            phone.backend.createKey(phone.operatorId, phone.machineId, "second")
            client.sync()
            val two = homes.awaitMatching { it.keyCount == 2u }
            assertEquals(2u, two.usableKeyCount)
            assertTrue(homes.seen.zipWithNext().all { (a, b) -> a != b }, "equal values are not repeated: ${homes.seen}")

            client.close()
            assertNull(homes.awaitEnd(), "closing the client ends its flows")
            client.core.close()
        }

    @Test
    fun `keys emits the list now and again after each sync that changes it`() = runBlocking {
        val phone = EnrolledPhone(name = "Kai Keys")
        val first = phone.backend.createKey(phone.operatorId, phone.machineId, "first")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        val lists = client.keys().recordIn(this)
        assertEquals(emptyList(), lists.awaitMatching { true }, "nothing before the first sync")

        val events = client.changes.recordIn(this)
        client.sync()
        assertEquals(listOf(first), lists.awaitMatching { it.isNotEmpty() }.map { it.id })
        events.awaitMatching { it == ChangeEvent.KeysChanged }
        assertIs<ChangeEvent.SyncFinished>(events.awaitMatching { it is ChangeEvent.SyncFinished })

        val second = phone.backend.createKey(phone.operatorId, phone.machineId, "second")
        client.sync()
        val both = lists.awaitMatching { it.size == 2 }
        assertEquals(setOf(first, second), both.map { it.id }.toSet())
        assertEquals(both, client.keys().first(), "a new collector starts from the current list")

        lists.stop()
        events.stop()
        client.close()
        client.core.close()
    }
}
