/**
 * [GattSession]: the OpKey connection steps over any GATT stack, so the order and the
 * clean-up are tested on the desktop and the Android transport only wires platform calls.
 * Connect: wait for the [ConnectionGate], then (with [GattRetry]) open a link, discover
 * services, raise the MTU (falling back to 23 when the peer or stack will not), find the
 * OpKey service; any failure or cancellation closes that attempt's link before the next
 * try. Subscribe turns `TX` notifications on; write sends one fragment to `RX` with
 * response; every step waits for its callback through [GattOperations]. Disconnect and
 * [closeAll] close each link exactly once. Pure JVM.
 */
package app.opkey.ble

import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.withTimeout
import uniffi.opkey_ffi.BleConnection
import uniffi.opkey_ffi.TransportException

/**
 * One platform connection, as [GattSession] drives it. Each `start…` issues a platform
 * call and returns whether the platform accepted it; its answer arrives through [ops]
 * (the callbacks call [GattOperations.complete]). Notifications go to [notifications].
 */
interface GattLink {
    val ops: GattOperations
    val notifications: NotificationQueue

    fun startConnect(): Boolean

    fun startDiscovery(): Boolean

    fun startMtuRequest(mtu: Int): Boolean

    /** After discovery: whether the OpKey service with `RX` and `TX` is there. */
    fun hasOpKeyService(): Boolean

    /** Routes `TX` notifications to this app (a local switch, no radio traffic). */
    fun routeNotifications(): Boolean

    /** Writes "notify on" to `TX`'s Client Characteristic Configuration descriptor. */
    fun startNotificationSwitch(): Boolean

    /** Writes [fragment] to `RX`, with response. */
    fun startWrite(fragment: ByteArray): Boolean

    /** Releases the platform connection; called once. */
    fun release()
}

class GattSession<L : GattLink>(
    private val retry: GattRetry = GattRetry(),
    /** Bound for one step after the link is up (discovery, MTU, a write). */
    private val stepTimeoutMs: Long = 5_000,
    /** The largest ATT MTU: 512-byte values (PROTOCOL.md §2.5) + 3. */
    private val wantedMtu: Int = 517,
) {
    companion object {
        const val MIN_MTU = 23
    }

    private class Open<L : GattLink>(val link: L, val mtu: Int)

    private val links = Connections<Open<L>>()
    private val gate = ConnectionGate<Open<L>> { close(it.link) }

    /** Opens a connection with links from [newLink] (one per attempt) within [timeoutMs]. */
    suspend fun connect(timeoutMs: Long, newLink: () -> L): BleConnection {
        val started = System.nanoTime()
        val open = gate.open(timeoutMs) {
            val left = timeoutMs - (System.nanoTime() - started) / 1_000_000
            try {
                withTimeout(left.coerceAtLeast(1)) { retry.run { attempt(newLink()) } }
            } catch (e: TimeoutCancellationException) {
                throw TransportException.Timeout()
            }
        }
        return BleConnection(links.add(open), open.mtu.toUShort())
    }

    suspend fun subscribe(handle: ULong) {
        val link = links[handle].link
        if (!link.routeNotifications()) throw TransportException.Other("the platform refused to route TX notifications")
        link.ops.perform(GattOp.WRITE_DESCRIPTOR, stepTimeoutMs, link::startNotificationSwitch)
    }

    suspend fun write(handle: ULong, fragment: ByteArray) {
        val link = links[handle].link
        link.ops.perform(GattOp.WRITE_CHARACTERISTIC, stepTimeoutMs) { link.startWrite(fragment) }
    }

    suspend fun nextNotification(handle: ULong, timeoutMs: Long): ByteArray =
        links[handle].link.notifications.next(timeoutMs)

    /** Closes [handle]'s link; an unknown or closed handle is fine. */
    fun disconnect(handle: ULong) {
        links.remove(handle)?.let(gate::close)
    }

    /** Closes every open link (the transport is going away). */
    fun closeAll() {
        links.removeAll().forEach { runCatching { gate.close(it) } }
    }

    /** The link behind [handle], for the platform adapter; Disconnected if there is none. */
    fun link(handle: ULong): L = links[handle].link

    /** One connect attempt; whatever goes wrong (cancellation too), its link is closed. */
    private suspend fun attempt(link: L): Open<L> {
        try {
            link.ops.perform(GattOp.CONNECT, Long.MAX_VALUE, link::startConnect)
            link.ops.perform(GattOp.DISCOVER_SERVICES, stepTimeoutMs, link::startDiscovery)
            val mtu = try {
                link.ops.perform(GattOp.REQUEST_MTU, stepTimeoutMs) { link.startMtuRequest(wantedMtu) }.mtu
                    .coerceIn(MIN_MTU, wantedMtu)
            } catch (e: TransportException) {
                // A peer that refuses the exchange (or a stack that never answers it) still
                // talks at the minimum; a lost link fails the next step anyway.
                if (e !is TransportException.Gatt && e !is TransportException.Timeout) throw e
                MIN_MTU
            }
            if (!link.hasOpKeyService()) throw TransportException.NotFound()
            return Open(link, mtu)
        } catch (e: Throwable) {
            close(link)
            throw e
        }
    }

    private fun close(link: L) {
        link.ops.fail(TransportException.Disconnected())
        link.notifications.close()
        link.release()
    }
}
