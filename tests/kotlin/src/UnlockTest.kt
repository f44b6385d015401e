package opkey.ffi.tests

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.CancelHandle
import uniffi.opkey_ffi.MachineCommand
import uniffi.opkey_ffi.OpKey
import uniffi.opkey_ffi.TransportException
import uniffi.opkey_ffi.UnlockException
import uniffi.opkey_ffi.UnlockOutcome
import uniffi.opkey_ffi.UsageEventKind

/**
 * The Digital Key from Kotlin: the phone's radio is a Kotlin [BleTransport] and the
 * machine is a real `opkey-machine run` process, provisioned by a real backend.
 */
class UnlockTest {
    /** One machine and one enrolled phone holding a Digital Key for it, for the whole class. */
    private class Site {
        val backend = Backend.shared
        val machineId = backend.createMachine("Wheel loader L-90")
        val machine = SimulatedMachine.start(backend, machineId)
        val operatorId: String
        val keyId: String
        val phone: OpKey

        init {
            val (operator, link) = backend.inviteOperator("Siri Operator")
            operatorId = operator
            keyId = backend.createKey(operatorId, machineId, "Digital Key, site B")
            phone = openPhone()
            runBlocking {
                phone.redeemInvite(link)
                phone.sync()
            }
        }
    }

    companion object {
        private val site by lazy { Site() }
    }

    @Test
    fun `a Kotlin radio unlocks the machine, warm the second time, and locks it again`() = runBlocking {
        val radio = SocketBleTransport(listOf(site.machine.address))

        // From a coroutine on another dispatcher, as a view model would.
        val cold = async(Dispatchers.Default) { site.phone.unlock(site.machineId, radio) }.await()
        val unlocked = assertIs<UnlockOutcome.Unlocked>(cold.outcome)
        assertTrue(unlocked.relockAfterS > 0u)
        assertEquals(MachineCommand.UNLOCK, cold.command)
        assertEquals(site.keyId, cold.keyId)
        assertTrue(cold.fullGrantSent, "the machine had never seen this grant")
        val line = assertNotNull(site.machine.awaitLine("unlocked key=${site.keyId}"), "machine said: ${site.machine.lines}")
        assertContains(line, "operator=${site.operatorId}")
        assertEquals(listOf("scan", "connect", "subscribe"), radio.calls.take(3))
        assertEquals("disconnect", radio.calls.last(), "the connection is always closed")

        val warm = site.phone.unlock(site.machineId, radio)
        assertIs<UnlockOutcome.Unlocked>(warm.outcome)
        assertFalse(warm.fullGrantSent, "the machine holds the grant: only the key id is sent")
        assertEquals(1u, warm.roundTrips)
        assertTrue(warm.bytesSent < cold.bytesSent, "warm ${warm.bytesSent} B, cold ${cold.bytesSent} B")

        val locked = site.phone.lock(site.machineId, radio)
        assertIs<UnlockOutcome.Locked>(locked.outcome)
        assertNotNull(site.machine.awaitLine("locked key=${site.keyId}"), "machine said: ${site.machine.lines}")

        val events = site.phone.usageEvents().associateBy { it.id }
        val mine = listOf(cold, warm, locked).map { assertNotNull(events[it.eventId], "no usage event for ${it.eventId}") }
        assertEquals(listOf("unlocked", "unlocked", "locked"), mine.map { it.outcome })
        assertEquals(UsageEventKind.LOCK_ATTEMPT, mine.last().kind)
        assertTrue(mine.all { it.keyId == site.keyId && it.uploadedAt == null })
    }

    @Test
    fun `a scan that finds nothing is NotInRange, and the attempt is still recorded`() = runBlocking {
        val before = site.phone.usageEvents().size
        val e = assertFailsWith<UnlockException.NotInRange> {
            site.phone.unlock(site.machineId, ScanOnlyRadio { emptyList() })
        }
        assertEquals(site.machineId, e.machineId)
        assertContains(e.reason, "closer")
        assertEquals("not-in-range", site.phone.usageEvents().drop(before).single().outcome)
    }

    @Test
    fun `Bluetooth turned off in the shell arrives as BluetoothOff`() = runBlocking {
        assertFailsWith<UnlockException.BluetoothOff> {
            site.phone.unlock(site.machineId, ScanOnlyRadio { throw TransportException.BluetoothOff() })
        }
        assertFailsWith<UnlockException.PermissionMissing> {
            site.phone.lock(site.machineId, ScanOnlyRadio { throw TransportException.PermissionMissing() })
        }
        Unit
    }

    @Test
    fun `an exception the transport did not declare is a typed error, not a crash`() = runBlocking {
        val e = assertFailsWith<UnlockException.Bluetooth> {
            site.phone.unlock(site.machineId, ScanOnlyRadio { throw IllegalStateException("GATT stack wedged") })
        }
        assertContains(e.reason, "GATT stack wedged")
        // The phone is fine afterwards.
        assertTrue(site.phone.status().enrolled)
    }

    @Test
    fun `a CancelHandle stops an unlock whose scan hangs, and the Kotlin scan is cancelled too`() = runBlocking {
        val scanCancelled = CompletableDeferred<Unit>()
        val radio = ScanOnlyRadio {
            try {
                awaitCancellation()
            } finally {
                scanCancelled.complete(Unit)
            }
        }
        val cancel = CancelHandle()
        val unlock = async(Dispatchers.Default) { runCatching { site.phone.unlock(site.machineId, radio, cancel) } }
        while (radio.scans == 0) delay(10)
        cancel.cancel()
        assertIs<UnlockException.Cancelled>(withTimeout(5_000) { unlock.await() }.exceptionOrNull())
        withTimeout(5_000) { scanCancelled.await() }
    }

    @Test
    fun `a machine no key opens is refused before any radio traffic`() = runBlocking {
        val radio = ScanOnlyRadio { error("the radio must not be used") }
        val e = assertFailsWith<UnlockException.NotInScope> { site.phone.unlock("mch_unknown", radio) }
        assertEquals("mch_unknown", e.machineId)
        assertEquals(0, radio.scans)
    }
}
