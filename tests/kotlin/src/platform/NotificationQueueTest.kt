package opkey.ffi.tests.platform

import app.opkey.ble.NotificationQueue
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** TX notifications from the callback thread reach the core in order, or as Timeout / Disconnected. */
class NotificationQueueTest {
    @Test
    fun `notifications come out in the order they arrived, as copies`() = runBlocking {
        val queue = NotificationQueue()
        val buffer = byteArrayOf(1, 2)
        queue.offer(buffer)
        buffer[0] = 9 // Android reuses characteristic value arrays.
        queue.offer(byteArrayOf(3))
        assertContentEquals(byteArrayOf(1, 2), queue.next(100))
        assertContentEquals(byteArrayOf(3), queue.next(100))
    }

    @Test
    fun `a reader waits for a notification from another thread`() = runBlocking {
        val queue = NotificationQueue()
        val reader = async(Dispatchers.Default) { queue.next(5_000) }
        delay(50)
        Thread { queue.offer(byteArrayOf(7)) }.start()
        assertContentEquals(byteArrayOf(7), reader.await())
    }

    @Test
    fun `nothing within the timeout is Timeout, and a later notification is not lost`() = runBlocking {
        val queue = NotificationQueue()
        val started = System.nanoTime()
        assertFailsWith<TransportException.Timeout> { queue.next(80) }
        assertTrue((System.nanoTime() - started) / 1_000_000 >= 75, "waited the timeout")
        queue.offer(byteArrayOf(5))
        assertContentEquals(byteArrayOf(5), queue.next(100))
    }

    @Test
    fun `a reader cancelled while waiting does not swallow the next notification`() = runBlocking {
        val queue = NotificationQueue()
        assertEquals(null, withTimeoutOrNull(50) { queue.next(10_000) })
        queue.offer(byteArrayOf(1))
        queue.offer(byteArrayOf(2))
        assertContentEquals(byteArrayOf(1), queue.next(100))
        assertContentEquals(byteArrayOf(2), queue.next(100))
    }

    @Test
    fun `closing wakes a waiting reader with Disconnected`() = runBlocking {
        val queue = NotificationQueue()
        val reader = async(Dispatchers.Default) { runCatching { queue.next(10_000) } }
        delay(50)
        queue.close()
        assertFailsWith<TransportException.Disconnected> { reader.await().getOrThrow() }
        assertFalse(queue.offer(byteArrayOf(1)), "nothing is queued after close")
        assertFailsWith<TransportException.Disconnected> { queue.next(10) }
    }

    @Test
    fun `what arrived before the link dropped is still read, then Disconnected`() = runBlocking {
        val queue = NotificationQueue()
        queue.offer(byteArrayOf(1))
        queue.close()
        queue.close()
        assertContentEquals(byteArrayOf(1), queue.next(10))
        assertFailsWith<TransportException.Disconnected> { queue.next(10) }
    }

    @Test
    fun `a reader that stopped reading closes the queue when it overflows`() = runBlocking {
        val queue = NotificationQueue(capacity = 3)
        repeat(3) { assertTrue(queue.offer(byteArrayOf(it.toByte()))) }
        assertFalse(queue.offer(byteArrayOf(3)))
        assertTrue(queue.isClosed)
        repeat(3) { assertContentEquals(byteArrayOf(it.toByte()), queue.next(10)) }
        assertFailsWith<TransportException.Disconnected> { queue.next(10) }
    }
}
