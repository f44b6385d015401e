/**
 * [OpKeyClient.unlock] and [OpKeyClient.lock] end as one [UnlockResult]: Opened and Closed
 * against a real `opkey-machine`, Refused with the core's sentence when the machine knows
 * better than a stale phone, and Failed with the core's guide when no machine answers, the
 * radio is off or the key is revoked.
 */
package opkey.ffi.tests.client

import app.opkey.OpKeyClient
import app.opkey.UnlockResult
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import opkey.ffi.tests.ScanOnlyRadio
import opkey.ffi.tests.SimulatedMachine
import opkey.ffi.tests.SocketBleTransport
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.Blocker
import uniffi.opkey_ffi.DenyReason
import uniffi.opkey_ffi.TransportException
import uniffi.opkey_ffi.UnlockOutcome
import uniffi.opkey_ffi.denyReasonMessage

class UnlockResultTest {
    private val admin = Admin()

    /**
     * A synced phone with a Digital Key for its machine, which runs (its BLE key registered
     * before the sync, so the phone holds a credential for it) whether a test's radio reaches
     * it or not.
     */
    private class Site(name: String) : AutoCloseable {
        val phone = EnrolledPhone(name = name)
        val keyId: String = phone.backend.createKey(phone.operatorId, phone.machineId, "cab")
        val running: SimulatedMachine = SimulatedMachine.start(phone.backend, phone.machineId)
        val client = OpKeyClient(phone.open())

        init {
            runBlocking {
                client.redeem(phone.link)
                client.sync()
            }
        }

        override fun close() {
            client.close()
            client.core.close()
            running.close()
        }
    }

    @Test
    fun `an unlock opens a real machine and a lock closes it`() = runBlocking {
        Site("Ole Opened").use { site ->
            val radio = SocketBleTransport(listOf(site.running.address))
            val homes = site.client.home().recordIn(this)
            val before = homes.awaitMatching { true }.usageEventsWaiting

            val opened = assertIs<UnlockResult.Opened>(site.client.unlock(site.phone.machineId, radio))
            assertEquals(site.keyId, opened.report.keyId)
            assertTrue(assertIs<UnlockOutcome.Unlocked>(opened.report.outcome).relockAfterS > 0u)
            assertNotNull(site.running.awaitLine("unlocked key=${site.keyId}"), "machine said: ${site.running.lines}")
            homes.awaitMatching { it.usageEventsWaiting == before + 1u }

            val closed = assertIs<UnlockResult.Closed>(site.client.lock(site.phone.machineId, radio))
            assertIs<UnlockOutcome.Locked>(closed.report.outcome)
            assertNotNull(site.running.awaitLine("locked key=${site.keyId}"), "machine said: ${site.running.lines}")
            homes.stop()
        }
    }

    @Test
    fun `no machine in range fails with the core's not-in-range guide`() = runBlocking {
        Site("Nils Nowhere").use { site ->
            val failed = assertIs<UnlockResult.Failed>(site.client.unlock(site.phone.machineId, ScanOnlyRadio { emptyList() }))
            assertEquals(Blocker.MACHINE_NOT_IN_RANGE, failed.guide.blocker, "$failed")
            assertTrue(failed.guide.retry)
            assertTrue(failed.guide.message.isNotBlank())
        }
    }

    @Test
    fun `a radio that is off fails with the Bluetooth-off guide, for unlock and lock`() = runBlocking {
        Site("Frida Off").use { site ->
            val off = ScanOnlyRadio { throw TransportException.BluetoothOff() }
            val unlock = assertIs<UnlockResult.Failed>(site.client.unlock(site.phone.machineId, off))
            assertEquals(Blocker.BLUETOOTH_OFF, unlock.guide.blocker, "$unlock")
            val lock = assertIs<UnlockResult.Failed>(site.client.lock(site.phone.machineId, off))
            assertEquals(Blocker.BLUETOOTH_OFF, lock.guide.blocker)
            val denied = assertIs<UnlockResult.Failed>(
                site.client.unlock(site.phone.machineId, ScanOnlyRadio { throw TransportException.PermissionMissing() }),
            )
            assertEquals(Blocker.BLUETOOTH_PERMISSION_MISSING, denied.guide.blocker)
        }
    }

    @Test
    fun `a revoked key fails before the radio with the key-revoked guide`() = runBlocking {
        Site("Rolf Revoked").use { site ->
            admin.revokeKey(site.keyId)
            site.client.sync()
            val radio = ScanOnlyRadio { error("the radio must not be used") }
            val failed = assertIs<UnlockResult.Failed>(site.client.unlock(site.phone.machineId, radio))
            assertEquals(Blocker.KEY_REVOKED, failed.guide.blocker)
            assertEquals(false, failed.guide.retry)
            assertEquals(0, radio.scans)
        }
    }

    @Test
    fun `a machine that learned of a revocation from another phone refuses a stale phone`() = runBlocking {
        Site("Stale Stian").use { stale ->
            val backend = stale.phone.backend
            val machine = stale.running
            // A second operator's phone at the same machine carries its newer revocation list.
            val (otherOperator, otherLink) = backend.inviteOperator("Fresh Fride")
            backend.createKey(otherOperator, stale.phone.machineId, "other cab")
            val radio = SocketBleTransport(listOf(machine.address))
            assertIs<UnlockResult.Opened>(stale.client.unlock(stale.phone.machineId, radio))

            admin.revokeKey(stale.keyId)
            val fresh = OpKeyClient(opkey.ffi.tests.openPhone())
            fresh.redeem(otherLink)
            fresh.sync()
            assertIs<UnlockResult.Opened>(fresh.unlock(stale.phone.machineId, SocketBleTransport(listOf(machine.address))))

            val refused = assertIs<UnlockResult.Refused>(stale.client.unlock(stale.phone.machineId, radio))
            assertEquals(DenyReason.REVOKED, refused.reason)
            assertEquals(denyReasonMessage(DenyReason.REVOKED), refused.message)
            assertIs<UnlockOutcome.Denied>(refused.report.outcome)
            fresh.close()
            fresh.core.close()
        }
    }

    @Test
    fun `cancelling the coroutine of an unlock whose scan hangs cancels the Kotlin scan and rethrows`() = runBlocking {
        Site("Hege Hang").use { site ->
            val scanCancelled = CompletableDeferred<Unit>()
            val radio = ScanOnlyRadio {
                try {
                    awaitCancellation()
                } finally {
                    scanCancelled.complete(Unit)
                }
            }
            val unlock = async(Dispatchers.Default) { site.client.unlock(site.phone.machineId, radio) }
            withTimeout(10.seconds) { while (radio.scans == 0) delay(10) }
            unlock.cancel()
            // Well before the core's own 8 s scan timeout: the cancel reached the core.
            withTimeout(3.seconds) { unlock.join() }
            assertTrue(unlock.isCancelled, "a cancelled unlock is not turned into a result")
            withTimeout(10.seconds) { scanCancelled.await() }
        }
    }
}
