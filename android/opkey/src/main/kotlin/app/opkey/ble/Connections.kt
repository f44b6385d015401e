/**
 * [Connections]: the handle table between the core and the platform's connection
 * objects. The core only ever holds a number; an unknown or closed handle is
 * [TransportException.Disconnected], as the BleTransport contract says. Generic, so the
 * Android transport keeps its GATT links here and tests keep fakes. Pure JVM, thread-safe.
 */
package app.opkey.ble

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import uniffi.opkey_ffi.TransportException

class Connections<C : Any> {
    private val open = ConcurrentHashMap<ULong, C>()

    // Handles are never reused, so a stale handle cannot reach a newer connection.
    private val next = AtomicLong(1)

    /** Stores [connection] under a new handle. */
    fun add(connection: C): ULong {
        val handle = next.getAndIncrement().toULong()
        open[handle] = connection
        return handle
    }

    /** The connection behind [handle]; [TransportException.Disconnected] if there is none. */
    operator fun get(handle: ULong): C = open[handle] ?: throw TransportException.Disconnected()

    /** Forgets [handle] and returns its connection, or null if it was not open. */
    fun remove(handle: ULong): C? = open.remove(handle)

    /** Forgets every handle; returns the connections to close. */
    fun removeAll(): List<C> = open.keys.mapNotNull { open.remove(it) }

    val size: Int get() = open.size
}
