package opkey.ffi.tests.platform

import app.opkey.ble.GattAnswer
import app.opkey.ble.GattOp
import app.opkey.ble.GattOperations
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** GATT callbacks from a binder thread become the results of suspending calls, one operation at a time. */
class GattOperationsTest {
    private val ops = GattOperations()

    /** Answers [op] from another thread, as Android's binder thread would. */
    private fun answerLater(op: GattOp, answer: GattAnswer, afterMs: Long = 20) =
        Thread { Thread.sleep(afterMs); ops.complete(op, answer) }.start()

    @Test
    fun `an operation returns its callback's answer`() = runBlocking {
        val answer = ops.perform(GattOp.REQUEST_MTU, 1_000) { answerLater(GattOp.REQUEST_MTU, GattAnswer(0, mtu = 247)); true }
        assertEquals(247, answer.mtu)
    }

    @Test
    fun `a failing status is a Gatt error with that status`() = runBlocking {
        val e = assertFailsWith<TransportException.Gatt> {
            ops.perform(GattOp.WRITE_CHARACTERISTIC, 1_000) { answerLater(GattOp.WRITE_CHARACTERISTIC, GattAnswer(133)); true }
        }
        assertEquals(133, e.status)
    }

    @Test
    fun `an operation Android refuses to start fails at once`() = runBlocking {
        val e = assertFailsWith<TransportException.Other> { ops.perform(GattOp.DISCOVER_SERVICES, 1_000) { false } }
        assertEquals("Android refused to start discover_services", e.reason)
    }

    @Test
    fun `no callback in time is Timeout, and the late callback is ignored`() = runBlocking {
        assertFailsWith<TransportException.Timeout> { ops.perform(GattOp.WRITE_DESCRIPTOR, 50) { true } }
        assertFalse(ops.complete(GattOp.WRITE_DESCRIPTOR, GattAnswer(0)), "nobody waits any more")
        val next = ops.perform(GattOp.WRITE_CHARACTERISTIC, 1_000) { answerLater(GattOp.WRITE_CHARACTERISTIC, GattAnswer(0)); true }
        assertEquals(0, next.status)
    }

    @Test
    fun `a callback for another operation does not answer the waiting one`() = runBlocking {
        val waiting = async(Dispatchers.Default) { runCatching { ops.perform(GattOp.WRITE_CHARACTERISTIC, 200) { true } } }
        delay(50)
        assertFalse(ops.complete(GattOp.REQUEST_MTU, GattAnswer(0, 100)))
        assertFailsWith<TransportException.Timeout> { waiting.await().getOrThrow() }
    }

    @Test
    fun `operations never overlap`() = runBlocking {
        val log = CopyOnWriteArrayList<String>()
        val jobs = (1..5).map { n ->
            async(Dispatchers.Default) {
                ops.perform(GattOp.WRITE_CHARACTERISTIC, 2_000) {
                    log += "start $n"
                    Thread {
                        Thread.sleep(10)
                        log += "end $n"
                        ops.complete(GattOp.WRITE_CHARACTERISTIC, GattAnswer(0))
                    }.start()
                    true
                }
            }
        }
        jobs.forEach { it.await() }
        assertEquals(10, log.size)
        log.chunked(2).forEach { (start, end) -> assertEquals(start.removePrefix("start "), end.removePrefix("end ")) }
    }

    @Test
    fun `a lost link fails the waiting operation and every later one`() = runBlocking {
        val waiting = async(Dispatchers.Default) { runCatching { ops.perform(GattOp.WRITE_CHARACTERISTIC, 10_000) { true } } }
        delay(50)
        ops.fail(TransportException.Disconnected())
        ops.fail(TransportException.Gatt(8))
        assertFailsWith<TransportException.Disconnected> { waiting.await().getOrThrow() }
        var started = false
        assertFailsWith<TransportException.Disconnected> { ops.perform(GattOp.WRITE_CHARACTERISTIC, 100) { started = true; true } }
        assertFalse(started, "nothing is sent on a lost link")
        assertTrue(ops.failure is TransportException.Disconnected, "the first loss is kept")
    }
}
