package opkey.ffi.tests.platform

import app.opkey.ble.ConnectionGate
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** One connection at a time, and the gate always opens again: after close, error, timeout or cancellation. */
class ConnectionGateTest {
    private class Link(val name: String)

    private val closed = CopyOnWriteArrayList<String>()
    private val gate = ConnectionGate<Link> { closed += it.name }

    @Test
    fun `a second connect waits until the first connection is closed`() = runBlocking {
        val first = gate.open(1_000) { Link("A") }
        assertSame(first, gate.holder)
        val second = async { gate.open(5_000) { Link("B") } }
        delay(100)
        assertFalse(second.isCompleted, "B waits while A is open")
        assertTrue(gate.close(first))
        assertEquals("B", withTimeout(2_000) { second.await() }.name)
        assertEquals(listOf("A"), closed)
    }

    @Test
    fun `a connect that cannot get the gate in time is a Timeout and opens nothing`() = runBlocking {
        val first = gate.open(1_000) { Link("A") }
        var opened = false
        assertFailsWith<TransportException.Timeout> { gate.open(50) { opened = true; Link("B") } }
        assertFalse(opened)
        gate.close(first)
        assertEquals("C", gate.open(50) { Link("C") }.name, "the timed-out waiter left the gate free")
    }

    @Test
    fun `a failed connect releases the gate`() = runBlocking {
        assertFailsWith<TransportException.Gatt> { gate.open(1_000) { throw TransportException.Gatt(133) } }
        assertNull(gate.holder)
        assertEquals("B", gate.open(100) { Link("B") }.name)
    }

    @Test
    fun `cancelling a connect in progress releases the gate`() = runBlocking {
        val started = CompletableDeferred<Unit>()
        val connecting = async { gate.open(1_000) { started.complete(Unit); awaitCancellation() } }
        started.await()
        connecting.cancel()
        assertFailsWith<CancellationException> { connecting.await() }
        assertEquals("B", gate.open(100) { Link("B") }.name)
    }

    @Test
    fun `cancelling a waiting connect leaves the holder alone`() = runBlocking {
        val first = gate.open(1_000) { Link("A") }
        val waiting = async { gate.open(10_000) { Link("B") } }
        yield()
        waiting.cancel()
        assertFailsWith<CancellationException> { waiting.await() }
        assertSame(first, gate.holder)
        assertTrue(gate.close(first))
        assertEquals("C", gate.open(100) { Link("C") }.name)
    }

    @Test
    fun `closing twice closes once, and a connection that does not hold the gate is not closed`() = runBlocking {
        val first = gate.open(1_000) { Link("A") }
        assertTrue(gate.close(first))
        assertFalse(gate.close(first))
        assertFalse(gate.close(Link("stranger")))
        assertEquals(listOf("A"), closed)
    }

    @Test
    fun `a close that throws still releases the gate`() = runBlocking {
        val throwing = ConnectionGate<Link> { throw IllegalStateException("gatt.close failed") }
        val first = throwing.open(1_000) { Link("A") }
        assertFailsWith<IllegalStateException> { throwing.close(first) }
        assertEquals("B", throwing.open(100) { Link("B") }.name)
    }
}
