package opkey.ffi.tests.platform

import app.opkey.ble.GattAnswer
import app.opkey.ble.GattLink
import app.opkey.ble.GattOp
import app.opkey.ble.GattOperations
import app.opkey.ble.GattRetry
import app.opkey.ble.GattSession
import app.opkey.ble.NotificationQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/**
 * The connection steps the Android transport runs, against a scripted GATT stack whose
 * callbacks arrive on another thread: the order of the steps, the MTU fallback, the 133
 * retry with the failed link closed first, and that every link is released exactly once.
 */
class GattSessionTest {
    /** How the fake stack answers each operation; null: it never answers. */
    private class Script(
        val connect: Int? = 0,
        val discover: Int? = 0,
        val mtu: Pair<Int, Int>? = 0 to 247,
        val service: Boolean = true,
        val cccd: Int? = 0,
        val write: Int? = 0,
    )

    private val log = CopyOnWriteArrayList<String>()
    private val made = AtomicInteger(0)

    private inner class FakeLink(private val script: Script) : GattLink {
        val id = made.incrementAndGet()
        override val ops = GattOperations()
        override val notifications = NotificationQueue()
        val released = AtomicInteger(0)
        val written = CopyOnWriteArrayList<ByteArray>()

        private fun answer(op: GattOp, status: Int?, mtu: Int = 0): Boolean {
            if (status != null) Thread { Thread.sleep(5); ops.complete(op, GattAnswer(status, mtu)) }.start()
            return true
        }

        override fun startConnect(): Boolean = answer(GattOp.CONNECT, script.connect).also { log += "connect $id" }
        override fun startDiscovery(): Boolean = answer(GattOp.DISCOVER_SERVICES, script.discover).also { log += "discover $id" }
        override fun startMtuRequest(mtu: Int): Boolean {
            log += "mtu $id asks $mtu"
            return answer(GattOp.REQUEST_MTU, script.mtu?.first, script.mtu?.second ?: 0)
        }
        override fun hasOpKeyService(): Boolean = script.service
        override fun routeNotifications(): Boolean = true.also { log += "route $id" }
        override fun startNotificationSwitch(): Boolean = answer(GattOp.WRITE_DESCRIPTOR, script.cccd).also { log += "cccd $id" }
        override fun startWrite(fragment: ByteArray): Boolean {
            written += fragment
            return answer(GattOp.WRITE_CHARACTERISTIC, script.write)
        }
        override fun release() {
            released.incrementAndGet()
            log += "release $id"
        }

        /** The peer sends a notification, or the link drops, from a binder thread. */
        fun notify(value: ByteArray) = Thread { notifications.offer(value) }.start()
        fun drop() {
            ops.fail(TransportException.Disconnected())
            notifications.close()
        }
    }

    private val fast = GattRetry(attempts = 3, firstBackoffMs = 1, maxBackoffMs = 2)
    private val session = GattSession<FakeLink>(fast, stepTimeoutMs = 200)

    @Test
    fun `a connect runs connect, discovery and the MTU exchange, then subscribe and write reach the link`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        val connection = session.connect(2_000) { FakeLink(Script()).also { links += it } }
        assertEquals(247, connection.attMtu.toInt())
        assertEquals(listOf("connect 1", "discover 1", "mtu 1 asks 517"), log.toList())
        session.subscribe(connection.handle)
        assertEquals(listOf("route 1", "cccd 1"), log.drop(3))
        session.write(connection.handle, byteArrayOf(1, 2, 3))
        assertContentEquals(byteArrayOf(1, 2, 3), links.single().written.single())
        links.single().notify(byteArrayOf(9))
        assertContentEquals(byteArrayOf(9), session.nextNotification(connection.handle, 1_000))
        session.disconnect(connection.handle)
        session.disconnect(connection.handle)
        assertEquals(1, links.single().released.get(), "released once")
        assertFailsWith<TransportException.Disconnected> { session.write(connection.handle, byteArrayOf(1)) }
    }

    @Test
    fun `status 133 on connect closes that link and tries a new one`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        val connection = session.connect(2_000) {
            FakeLink(if (links.isEmpty()) Script(connect = 133) else Script()).also { links += it }
        }
        assertEquals(2, links.size)
        assertEquals(1, links[0].released.get(), "the failed link was closed")
        assertTrue(log.indexOf("release 1") < log.indexOf("connect 2"), "closed before the next try: $log")
        assertEquals(0, links[1].released.get())
        session.disconnect(connection.handle)
    }

    @Test
    fun `a peer that refuses or ignores the MTU exchange is used at the minimum MTU`() = runBlocking {
        for (script in listOf(Script(mtu = 6 to 0), Script(mtu = null))) {
            val connection = session.connect(2_000) { FakeLink(script) }
            assertEquals(23, connection.attMtu.toInt())
            session.disconnect(connection.handle)
        }
    }

    @Test
    fun `a device without the OpKey service is NotFound and its link is closed`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        assertFailsWith<TransportException.NotFound> { session.connect(2_000) { FakeLink(Script(service = false)).also { links += it } } }
        assertEquals(1, links.single().released.get())
        val next = session.connect(500) { FakeLink(Script()) }
        session.disconnect(next.handle)
    }

    @Test
    fun `a connect that never comes up is a Timeout within the caller's time, and the link is closed`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        val started = System.nanoTime()
        assertFailsWith<TransportException.Timeout> { session.connect(150) { FakeLink(Script(connect = null)).also { links += it } } }
        assertTrue((System.nanoTime() - started) / 1_000_000 < 1_000)
        assertTrue(links.all { it.released.get() == 1 })
    }

    @Test
    fun `cancelling a connect closes the half-open link and frees the gate`() = runBlocking {
        val links = CopyOnWriteArrayList<FakeLink>()
        val connecting = async(Dispatchers.Default) { session.connect(10_000) { FakeLink(Script(discover = null)).also { links += it } } }
        withTimeout(2_000) { while (!log.contains("discover 1")) delay(5) }
        connecting.cancel()
        assertFailsWith<CancellationException> { connecting.await() }
        assertEquals(1, links.single().released.get())
        val next = session.connect(500) { FakeLink(Script()) }
        session.disconnect(next.handle)
    }

    @Test
    fun `a second connect waits for the first disconnect`() = runBlocking {
        val first = session.connect(1_000) { FakeLink(Script()) }
        assertFailsWith<TransportException.Timeout> { session.connect(100) { FakeLink(Script()) } }
        session.disconnect(first.handle)
        val second = session.connect(1_000) { FakeLink(Script()) }
        session.disconnect(second.handle)
    }

    @Test
    fun `a write the machine answers with an error status is a Gatt error`() = runBlocking {
        val connection = session.connect(1_000) { FakeLink(Script(write = 3)) }
        val e = assertFailsWith<TransportException.Gatt> { session.write(connection.handle, byteArrayOf(1)) }
        assertEquals(3, e.status)
        session.disconnect(connection.handle)
    }

    @Test
    fun `a link that drops fails the waiting read and the next write with Disconnected`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        val connection = session.connect(1_000) { FakeLink(Script()).also { links += it } }
        val reading = async(Dispatchers.Default) { runCatching { session.nextNotification(connection.handle, 5_000) } }
        delay(50)
        links.single().drop()
        assertFailsWith<TransportException.Disconnected> { reading.await().getOrThrow() }
        assertFailsWith<TransportException.Disconnected> { session.write(connection.handle, byteArrayOf(1)) }
        session.disconnect(connection.handle)
        assertEquals(1, links.single().released.get(), "the core's disconnect still releases it")
    }

    @Test
    fun `closeAll releases every open link`() = runBlocking {
        val links = mutableListOf<FakeLink>()
        session.connect(1_000) { FakeLink(Script()).also { links += it } }
        session.closeAll()
        assertEquals(1, links.single().released.get())
        assertFalse(links.single().notifications.offer(byteArrayOf(1)), "its queue is closed")
    }
}
