package opkey.ffi.tests.platform

import app.opkey.ble.GattRetry
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** Which connect failures are tried again, how often and after what pause. */
class GattRetryTest {
    private val fast = GattRetry(attempts = 3, firstBackoffMs = 1, maxBackoffMs = 4)

    @Test
    fun `status 133 and 62 retry, other statuses and other errors do not`() {
        val retry = GattRetry()
        assertTrue(retry.retries(TransportException.Gatt(133)))
        assertTrue(retry.retries(TransportException.Gatt(62)))
        assertFalse(retry.retries(TransportException.Gatt(5)), "insufficient authentication will not pass")
        assertFalse(retry.retries(TransportException.BluetoothOff()))
        assertFalse(retry.retries(TransportException.PermissionMissing()))
        assertFalse(retry.retries(TransportException.Timeout()))
        assertFalse(retry.retries(IllegalStateException("x")))
    }

    @Test
    fun `the pause doubles from the first and stops at the maximum`() {
        val retry = GattRetry(attempts = 6, firstBackoffMs = 250, maxBackoffMs = 1_000)
        assertEquals(listOf(250L, 500L, 1_000L, 1_000L, 1_000L), (1..5).map(retry::backoffMs))
    }

    @Test
    fun `a passing 133 is tried again and the second connect succeeds`() = runBlocking {
        val tries = CopyOnWriteArrayList<Int>()
        val result = fast.run { attempt ->
            tries += attempt
            if (attempt == 1) throw TransportException.Gatt(133)
            "link $attempt"
        }
        assertEquals("link 2", result)
        assertEquals(listOf(1, 2), tries)
    }

    @Test
    fun `after the last attempt the last error is thrown`() = runBlocking {
        var tries = 0
        val e = assertFailsWith<TransportException.Gatt> { fast.run<Unit> { tries++; throw TransportException.Gatt(133) } }
        assertEquals(133, e.status)
        assertEquals(3, tries)
    }

    @Test
    fun `a failure that will not pass is thrown at once`() = runBlocking {
        var tries = 0
        assertFailsWith<TransportException.PermissionMissing> { fast.run<Unit> { tries++; throw TransportException.PermissionMissing() } }
        assertEquals(1, tries)
    }

    @Test
    fun `cancelling stops the retries`() = runBlocking {
        var tries = 0
        val slow = GattRetry(attempts = 5, firstBackoffMs = 10_000, maxBackoffMs = 10_000)
        val job = async { slow.run<Unit> { tries++; throw TransportException.Gatt(133) } }
        delay(50)
        job.cancel()
        assertFailsWith<CancellationException> { job.await() }
        assertEquals(1, tries)
    }

    @Test
    fun `settings that make no sense are refused`() {
        assertFailsWith<IllegalArgumentException> { GattRetry(attempts = 0) }
        assertFailsWith<IllegalArgumentException> { GattRetry(firstBackoffMs = 2_000, maxBackoffMs = 1_000) }
        assertFailsWith<IllegalArgumentException> { GattRetry().backoffMs(0) }
    }
}
