/**
 * [GattOperations]: Android's `BluetoothGatt` callbacks turned into suspending calls.
 * Android allows one outstanding GATT operation per connection, and answers each in a
 * callback on a binder thread. [perform] starts one operation (a lambda that calls the
 * platform and says whether it was accepted), then suspends until the matching callback
 * calls [complete], the timeout passes or the link is lost ([fail]). A callback for an
 * operation nobody waits for (a late answer after a timeout) is ignored. Pure JVM.
 */
package app.opkey.ble

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.opkey_ffi.TransportException

/** The GATT operations an OpKey connection makes, each answered by one callback. */
enum class GattOp { CONNECT, DISCOVER_SERVICES, REQUEST_MTU, WRITE_DESCRIPTOR, WRITE_CHARACTERISTIC }

/** A callback's answer: the GATT status and, for an MTU exchange, the new MTU. */
data class GattAnswer(val status: Int, val mtu: Int = 0)

class GattOperations {
    companion object {
        const val GATT_SUCCESS = 0
    }

    private class Pending(val op: GattOp, val answer: CompletableDeferred<GattAnswer>)

    private val oneAtATime = Mutex()
    private val lock = Any()
    private var pending: Pending? = null
    private var lost: TransportException? = null

    /**
     * Runs one operation: [start] issues it and returns whether the platform accepted it
     * (false: [TransportException.Other]). Success is a [GattAnswer] with status 0; another
     * status is [TransportException.Gatt]; no answer within [timeoutMs] is
     * [TransportException.Timeout]; a lost link is the error given to [fail].
     */
    suspend fun perform(op: GattOp, timeoutMs: Long, start: () -> Boolean): GattAnswer = oneAtATime.withLock {
        val answer = CompletableDeferred<GattAnswer>()
        synchronized(lock) {
            lost?.let { throw it }
            pending = Pending(op, answer)
        }
        try {
            if (!start()) throw TransportException.Other("Android refused to start ${op.name.lowercase()}")
            val result = withTimeoutOrNull(timeoutMs.coerceAtLeast(0)) { answer.await() }
                ?: throw TransportException.Timeout()
            if (result.status != GATT_SUCCESS) throw TransportException.Gatt(result.status)
            result
        } finally {
            synchronized(lock) { if (pending?.answer === answer) pending = null }
        }
    }

    /** From a callback: answers the waiting [op]. False if nobody waits for it. */
    fun complete(op: GattOp, answer: GattAnswer): Boolean {
        val waiting = synchronized(lock) { pending?.takeIf { it.op == op } } ?: return false
        return waiting.answer.complete(answer)
    }

    /**
     * The link is gone: the waiting operation and every later one fail with [error].
     * Only the first call counts.
     */
    fun fail(error: TransportException) {
        val (waiting, first) = synchronized(lock) {
            val first = lost ?: error.also { lost = it }
            pending to first
        }
        waiting?.answer?.completeExceptionally(first)
    }

    val failure: TransportException? get() = synchronized(lock) { lost }
}
