/**
 * [ConnectionGate]: at most one OpKey connection at a time. Android's Bluetooth stack
 * copes badly with parallel GATT connects, and an unlock needs only one machine. A
 * second `connect` waits (within its timeout) until the first is closed. Whatever
 * happens (an error, a timeout, cancellation of the waiting coroutine), the gate is
 * released and a connection that was opened is closed exactly once (by [close]). Pure JVM, generic
 * over the connection type.
 */
package app.opkey.ble

import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.opkey_ffi.TransportException

class ConnectionGate<C : Any>(private val closeConnection: (C) -> Unit) {
    private val mutex = Mutex()
    private val lock = Any()
    private var current: C? = null

    /** The connection holding the gate, if any. */
    val holder: C? get() = synchronized(lock) { current }

    /**
     * Waits up to [timeoutMs] for the gate ([TransportException.Timeout] otherwise), then
     * runs [open]. The gate stays taken by the returned connection until [close]; if [open]
     * throws or is cancelled, the gate is released before the failure propagates ([open]
     * closes whatever it half-opened).
     */
    suspend fun open(timeoutMs: Long, open: suspend () -> C): C {
        withTimeoutOrNull(timeoutMs.coerceAtLeast(0)) { mutex.lock() } ?: throw TransportException.Timeout()
        var opened: C? = null
        try {
            opened = open()
            synchronized(lock) { current = opened }
            return opened
        } finally {
            if (opened == null) mutex.unlock()
        }
    }

    /**
     * Closes [connection] and releases the gate, if [connection] holds it; returns false
     * (and does nothing) otherwise, so a second close is harmless and closes nothing twice.
     */
    fun close(connection: C): Boolean {
        val holds = synchronized(lock) {
            (current === connection).also { if (it) current = null }
        }
        if (!holds) return false
        try {
            closeConnection(connection)
        } finally {
            mutex.unlock()
        }
        return true
    }
}
