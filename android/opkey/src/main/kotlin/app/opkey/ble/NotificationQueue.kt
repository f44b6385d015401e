/**
 * [NotificationQueue]: `TX` notifications of one connection, from the platform's
 * callback thread to the core's `nextNotification`, in order. Values wait in a deque; a
 * conflated [Channel] only wakes the reader, so a reader that times out or is cancelled
 * never loses a notification. Closing (link lost, disconnect, overflow) wakes every
 * reader: what arrived before is still delivered, then [TransportException.Disconnected].
 * Pure JVM.
 */
package app.opkey.ble

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.opkey_ffi.TransportException

class NotificationQueue(
    /** Unread notifications beyond this mean the reader is gone: the queue closes. */
    private val capacity: Int = 256,
) {
    private val values = ArrayDeque<ByteArray>()
    private val wake = Channel<Unit>(Channel.CONFLATED)
    private var closed = false

    /** From the callback thread: queues a copy of [value]. False if the queue is closed. */
    fun offer(value: ByteArray): Boolean {
        synchronized(values) {
            if (closed) return false
            if (values.size >= capacity) {
                closeLocked()
                return false
            }
            values.addLast(value.copyOf())
        }
        wake.trySend(Unit)
        return true
    }

    /**
     * The oldest unread notification; [TransportException.Timeout] when none arrives
     * within [timeoutMs], [TransportException.Disconnected] once the queue is closed and
     * empty.
     */
    suspend fun next(timeoutMs: Long): ByteArray {
        val deadline = System.nanoTime() + timeoutMs.coerceAtLeast(0) * 1_000_000
        while (true) {
            synchronized(values) {
                values.removeFirstOrNull()?.let { return it }
                if (closed) throw TransportException.Disconnected()
            }
            val left = (deadline - System.nanoTime()) / 1_000_000
            if (left <= 0) throw TransportException.Timeout()
            withTimeoutOrNull(left) { wake.receiveCatching() } ?: throw TransportException.Timeout()
        }
    }

    /** Ends the queue; later offers are dropped. Idempotent. */
    fun close() {
        synchronized(values) { closeLocked() }
    }

    val isClosed: Boolean get() = synchronized(values) { closed }

    private fun closeLocked() {
        closed = true
        wake.close()
    }
}
