package opkey.ffi.tests

import java.io.DataInputStream
import java.io.EOFException
import java.io.IOException
import java.net.ConnectException
import java.net.InetSocketAddress
import java.net.Socket
import java.net.SocketTimeoutException
import java.security.MessageDigest
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicLong
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.opkey_ffi.Advertisement
import uniffi.opkey_ffi.BleConnection
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.TransportException

/**
 * The [BleTransport] an Android shell would write over `BluetoothGatt`, written here over
 * the simulator's local socket (PROTOCOL.md 2.10): one TCP connection is one subscribed
 * GATT connection, every fragment travels as `u16 big-endian length ‖ fragment`.
 *
 * "Scanning" connects to each address, reads the first fragment of the Hello the machine
 * sends on accepting, and advertises the machine id's tag, as a real advertisement would
 * carry it. Each connection reads its frames on a thread of its own into a channel, so a
 * notification timeout never leaves half a frame behind.
 */
class SocketBleTransport(private val addresses: List<String>, private val attMtu: UShort = 185u) : BleTransport {
    private class Link(val socket: Socket, val frames: Channel<ByteArray>)

    private val links = ConcurrentHashMap<ULong, Link>()
    private val nextHandle = AtomicLong(1)

    /** Every call the core made, in order, for assertions. */
    val calls = CopyOnWriteArrayList<String>()

    override suspend fun scan(serviceUuid: String, tags: List<ByteArray>, timeoutMs: ULong): List<Advertisement> {
        calls += "scan"
        return withContext(Dispatchers.IO) {
            addresses.mapNotNull { address ->
                val machineId = runCatching { probe(address, timeoutMs.toInt()) }.getOrNull() ?: return@mapNotNull null
                val tag = machineTag(machineId)
                if (tags.isEmpty() || tags.any { it.contentEquals(tag) }) Advertisement(address, tag, null) else null
            }
        }
    }

    override suspend fun connect(peripheralId: String, timeoutMs: ULong): BleConnection {
        calls += "connect"
        return withContext(Dispatchers.IO) {
            val socket = open(peripheralId, timeoutMs.toInt())
            val frames = Channel<ByteArray>(Channel.UNLIMITED)
            Thread {
                val input = DataInputStream(socket.getInputStream().buffered())
                try {
                    while (true) frames.trySend(readFrame(input) ?: break)
                } catch (_: Exception) {
                    // A closed socket or a malformed frame: either way the link is gone.
                } finally {
                    frames.close()
                }
            }.apply { isDaemon = true; name = "socket-ble-reader" }.start()
            val handle = nextHandle.getAndIncrement().toULong()
            links[handle] = Link(socket, frames)
            BleConnection(handle, attMtu)
        }
    }

    /** A socket link is subscribed from the start: the Hello is already on its way. */
    override suspend fun subscribe(connection: ULong) {
        calls += "subscribe"
        link(connection)
    }

    override suspend fun write(connection: ULong, fragment: ByteArray) {
        calls += "write"
        val link = link(connection)
        withContext(Dispatchers.IO) {
            try {
                synchronized(link) {
                    val out = link.socket.getOutputStream()
                    out.write(byteArrayOf((fragment.size shr 8).toByte(), fragment.size.toByte()) + fragment)
                    out.flush()
                }
            } catch (_: IOException) {
                throw TransportException.Disconnected()
            }
        }
    }

    override suspend fun nextNotification(connection: ULong, timeoutMs: ULong): ByteArray {
        val link = link(connection)
        val next = withTimeoutOrNull(timeoutMs.toLong()) { link.frames.receiveCatching() }
            ?: throw TransportException.Timeout()
        return next.getOrNull() ?: throw TransportException.Disconnected()
    }

    override suspend fun disconnect(connection: ULong) {
        calls += "disconnect"
        links.remove(connection)?.socket?.close()
    }

    private fun link(handle: ULong): Link = links[handle] ?: throw TransportException.Disconnected()

    companion object {
        /** `SHA-256("opkey-adv-v1" ‖ machine_id)[0..6]` (PROTOCOL.md 2.4). */
        fun machineTag(machineId: String): ByteArray =
            MessageDigest.getInstance("SHA-256")
                .digest("opkey-adv-v1".toByteArray() + machineId.toByteArray())
                .copyOf(6)

        private fun open(address: String, timeoutMs: Int): Socket {
            val (host, port) = address.split(":").let { it[0] to it[1].toInt() }
            val socket = Socket()
            try {
                socket.connect(InetSocketAddress(host, port), timeoutMs)
            } catch (_: ConnectException) {
                socket.close()
                throw TransportException.NotFound()
            } catch (_: SocketTimeoutException) {
                socket.close()
                throw TransportException.Timeout()
            }
            socket.tcpNoDelay = true
            return socket
        }

        /**
         * The machine id in the Hello's first fragment: header (F set), u16 total length,
         * version 1, type 0x01, then `str machine_id` (u8 length ‖ UTF-8).
         */
        private fun probe(address: String, timeoutMs: Int): String = open(address, timeoutMs).use { socket ->
            socket.soTimeout = timeoutMs
            val fragment = readFrame(DataInputStream(socket.getInputStream())) ?: throw EOFException()
            check(fragment.size >= 6 && fragment[0].toInt() and 0x80 != 0 && fragment[3] == 1.toByte() && fragment[4] == 1.toByte()) {
                "not a Hello"
            }
            val length = fragment[5].toInt() and 0xff
            String(fragment, 6, length, Charsets.UTF_8)
        }

        /** The next frame's fragment; null when the peer closed between frames. */
        private fun readFrame(input: DataInputStream): ByteArray? {
            val high = input.read()
            if (high < 0) return null
            val length = (high shl 8) or input.readUnsignedByte()
            check(length <= 512) { "a $length-byte frame exceeds 512 bytes" }
            return ByteArray(length).also { input.readFully(it) }
        }
    }
}
