package opkey.ffi.tests

import java.io.BufferedReader
import java.io.InputStreamReader
import java.io.PrintWriter
import java.net.ServerSocket
import java.net.Socket
import java.time.Instant
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.AccessType
import uniffi.opkey_ffi.PinException
import uniffi.opkey_ffi.PinListener
import uniffi.opkey_ffi.PinStopReason
import uniffi.opkey_ffi.PinView

/**
 * Rolling PIN through the bindings, end to end: the backend creates a Rolling PIN key, a
 * sync brings its seed to the phone, the phone shows the PIN, and the simulated machine's
 * keypad (`opkey-machine run --keypad-listen`, a line per entry, a JSON line back) accepts
 * it and refuses a wrong one.
 */
class PinTest {
    private val backend = Backend.shared

    private class Heard : PinListener {
        val pins = CopyOnWriteArrayList<PinView>()
        val stops = CopyOnWriteArrayList<PinStopReason>()
        override fun onPin(pin: PinView) { pins += pin }
        override fun onStopped(why: PinStopReason, reason: String) { stops += why }
    }

    private fun freePort(): Int = ServerSocket(0).use { it.localPort }

    /** Types [digits] on the keypad at [port]; returns its JSON answer line. */
    private fun typeOnKeypad(port: Int, digits: String): String {
        val deadline = System.nanoTime() + 10_000_000_000
        while (true) {
            try {
                Socket("127.0.0.1", port).use { socket ->
                    socket.soTimeout = 5_000
                    PrintWriter(socket.getOutputStream(), true).println(digits)
                    return BufferedReader(InputStreamReader(socket.getInputStream())).readLine()
                        ?: error("the keypad closed without an answer")
                }
            } catch (e: java.net.ConnectException) {
                if (System.nanoTime() > deadline) throw e
                Thread.sleep(50)
            }
        }
    }

    @Test
    fun `a synced Rolling PIN is shown offline and the machine's keypad accepts it`() = runBlocking {
        val machineId = backend.createMachine("Telehandler TH-35")
        val (operatorId, link) = backend.inviteOperator("Kari Keypad")
        val (keyId, keyJson) = backend.createRollingPinKey(operatorId, machineId, digits = 6, periodS = 60)
        val slot = Regex(""""slot"\s*:\s*(\d+)""").find(keyJson)?.groupValues?.get(1)?.toInt()
            ?: error("no rolling_pin.slot in $keyJson")
        val digitalKey = backend.createKey(operatorId, machineId, "Cab")

        val phone = openPhone()
        phone.redeemInvite(link)
        phone.sync()

        val key = phone.key(keyId)
        assertEquals(AccessType.ROLLING_PIN, key.accessType)
        val settings = assertNotNull(key.rollingPin)
        assertEquals(slot, settings.slot.toInt())
        assertEquals(6, settings.digits.toInt())
        assertEquals(60u, settings.periodS)
        assertTrue(key.pinSynced, "the seed came with the sync")

        val pin = phone.pin(keyId)
        assertEquals(9, pin.pin.length)
        assertTrue(pin.pin.startsWith("%03d".format(slot)), pin.pin)
        assertTrue(pin.secondsLeft in 1u..60u, "${pin.secondsLeft}")
        assertTrue(pin.validUntil.isAfter(Instant.now().minusSeconds(5)))
        assertTrue(pin.acceptedUntil.isAfter(pin.validUntil))
        assertNull(pin.clockWarning, "this machine's clock is the server's")

        val clock = phone.clockStatus()
        assertTrue(clock.measured)
        assertNull(clock.warning)

        val notPin = assertFailsWith<PinException.NotAPinKey> { phone.pin(digitalKey) }
        assertEquals(AccessType.DIGITAL_KEY, notPin.accessType)
        assertFailsWith<PinException.KeyNotFound> { phone.pin("no-such-key") }

        val heard = Heard()
        val watch = phone.watchPin(keyId, heard)
        assertEquals(1, heard.pins.size, "the current PIN at once")
        assertEquals(phone.pin(keyId).step, heard.pins[0].step)
        watch.cancel()
        assertFalse(watch.isActive())

        // The machine learns its keypad table from its provisioning bundle.
        val port = freePort()
        SimulatedMachine.start(backend, machineId, listOf("--keypad-listen", "127.0.0.1:$port")).use {
            val shown = phone.pin(keyId).pin
            val accepted = typeOnKeypad(port, shown)
            assertContains(accepted, Regex(""""accepted"\s*:\s*true"""), accepted)
            val wrong = shown.dropLast(1) + ((shown.last().digitToInt() + 1) % 10).toString()
            val refused = typeOnKeypad(port, wrong)
            assertContains(refused, Regex(""""accepted"\s*:\s*false"""), refused)
            assertContains(refused, "wrong_pin")
        }
        phone.close()
    }
}
