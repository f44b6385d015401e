package opkey.ffi.tests

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import java.time.Duration
import java.time.Instant
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.AccessType
import uniffi.opkey_ffi.ChangeEvent
import uniffi.opkey_ffi.InviteForm
import uniffi.opkey_ffi.KeyState
import uniffi.opkey_ffi.Keypad
import uniffi.opkey_ffi.LogLevel
import uniffi.opkey_ffi.SyncProgress
import uniffi.opkey_ffi.SyncProgressListener
import uniffi.opkey_ffi.TelematicsUnit
import uniffi.opkey_ffi.installLogger

/** The happy path as the Android app walks it: SMS link, redeem, sync, keys. */
class EnrollmentAndSyncTest {
    private val backend = Backend.shared

    @Test
    fun `an SMS invite enrolls the phone with its Kotlin signer and a sync brings the keys`() = runBlocking {
        val machine = backend.createMachine("Excavator EX-210")
        val (operatorId, link) = backend.inviteOperator("Ola Nordmann")
        val keyId = backend.createKey(operatorId, machine, "Site A")
        val signer = JcaSigner()
        val secrets = MemorySecretStore()
        val phone = openPhone(signer = signer, secrets = secrets)

        val parsed = phone.parseInvite(link)
        assertEquals(InviteForm.LINK, parsed.form)
        assertEquals(backend.url + "/", parsed.serverUrl)

        val enrollment = phone.redeemInvite(link)
        assertEquals(operatorId, enrollment.operator.id)
        assertEquals("Ola Nordmann", enrollment.operator.name)
        assertTrue(signer.signatures.get() > 0, "the Kotlin signer signed the redeem")
        assertEquals(32, secrets.values["opkey.data-key"]?.size, "the data key lives in the platform store")

        // Sync in a coroutine on another dispatcher, as an app's view model would.
        val report = async(Dispatchers.IO) { phone.sync() }.await()
        assertEquals(1u, report.upserted)

        val keys = phone.keys()
        assertEquals(listOf(keyId), keys.map { it.id })
        val key = phone.key(keyId)
        assertEquals(KeyState.ACTIVE, key.state)
        assertTrue(key.usable)
        assertEquals(AccessType.DIGITAL_KEY, key.accessType)
        assertTrue(key.personal)
        assertEquals("Site A", key.description)
        assertTrue(key.validFrom.isBefore(Instant.now()) && key.validTo.isAfter(Instant.now()))
        assertEquals(listOf("Excavator EX-210"), key.machines.map { it.name })
        assertEquals(TelematicsUnit.TU600, key.machines[0].unitType)
        assertEquals(Keypad.DUAL_ID, key.machines[0].keypad)

        val status = phone.status()
        assertTrue(status.enrolled)
        assertEquals(enrollment.phoneId, status.phoneId)
        assertEquals(operatorId, status.operator?.id)
        assertEquals(enrollment.organizations, status.organizations)
        val lastSync = assertNotNull(status.lastSyncAt)
        assertTrue(Duration.between(lastSync, Instant.now()).abs() < Duration.ofMinutes(1))
        assertNotNull(status.serverOffsetMs, "the server-time offset is measured")
        assertEquals(null, status.clockWarning, "this machine's clock is the server's")
        assertEquals(1u, status.usableKeyCount)
        phone.close()
    }

    @Test
    fun `a change listener hears a sync from a Rust thread until its subscription is cancelled`() = runBlocking {
        val machine = backend.createMachine("Dumper D-30")
        val (operatorId, link) = backend.inviteOperator("Kari Nordmann")
        val phone = openPhone()
        phone.redeemInvite(link)
        val listener = RecordingListener()
        val subscription = phone.subscribe(listener)
        assertTrue(subscription.isActive())

        backend.createKey(operatorId, machine, "night shift")
        val seen = java.util.concurrent.CopyOnWriteArrayList<SyncProgress>()
        phone.sync(progress = object : SyncProgressListener {
            override fun onProgress(progress: SyncProgress) { seen += progress }
        })
        assertTrue(listener.awaitSyncEnd())

        assertIs<ChangeEvent.SyncStarted>(listener.events.first())
        assertContains(listener.events, ChangeEvent.KeysChanged)
        val finished = assertIs<ChangeEvent.SyncFinished>(listener.events.last())
        assertEquals(1u, finished.report.upserted)
        val testThread = Thread.currentThread().name
        assertTrue(listener.threads.none { it == testThread }, "events came on ${listener.threads}, not the caller's thread")
        assertTrue(seen.any { it is SyncProgress.Applying }, "progress: $seen")

        subscription.cancel()
        assertFalse(subscription.isActive())
        val heard = listener.events.size
        phone.sync()
        assertEquals(heard, listener.events.size, "no event after cancel")
        phone.close()
    }

    @Test
    fun `a Kotlin logger receives the core's log lines and never an invite secret`() = runBlocking {
        val logger = RecordingLogger()
        installLogger(logger, LogLevel.DEBUG)
        val (_, link) = backend.inviteOperator("Per Hansen")
        val phone = openPhone()
        phone.redeemInvite(link)
        phone.sync()

        assertTrue(logger.records.isNotEmpty(), "no log line reached Kotlin")
        assertTrue(logger.records.all { it.target.startsWith("opkey") }, "only OpKey's own lines are forwarded")
        val token = link.substringAfterLast("/i/")
        assertTrue(logger.records.none { token in it.message }, "a log line carried the invite token")
        phone.close()
        installLogger(RecordingLogger(), LogLevel.ERROR)
    }
}
