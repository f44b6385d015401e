/**
 * [OpKeyClient.pinCountdown]: the core's PinView at each tick with its countdown, the core's
 * reason (and the end) when a key has no Rolling PIN, and a tick whose `toString()` never
 * carries the PIN.
 */
package opkey.ffi.tests.client

import app.opkey.OpKeyClient
import app.opkey.PinTick
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.PinException

class PinCountdownTest {
    /** A client whose phone holds a synced Rolling PIN key and a Digital Key; returns both ids. */
    private fun phoneWithPins(name: String): Triple<OpKeyClient, String, String> = runBlocking {
        val phone = EnrolledPhone(name = name)
        val (rollingId, _) = phone.backend.createRollingPinKey(phone.operatorId, phone.machineId, periodS = 60)
        val digitalId = phone.backend.createKey(phone.operatorId, phone.machineId, "cab")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        client.sync()
        Triple(client, rollingId, digitalId)
    }

    @Test
    fun `the countdown shows the core's PIN at each tick, its seconds going down within a step`() = runBlocking {
        val (client, rollingId, _) = phoneWithPins("Tor Tick")
        // 14 ticks 200 ms apart span 2.6 s: even when the PIN rolls over meanwhile, one
        // step lasts over a second of them.
        val ticks = withTimeout(20.seconds) { client.pinCountdown(rollingId, every = 200.milliseconds).take(14).toList() }
        val pins = ticks.map { assertIs<PinTick.Shown>(it).pin }
        assertTrue(pins.all { it.keyId == rollingId && it.pin.length == 9 }, "slot and 6 digits")
        val steps = pins.groupBy { it.step }.values
        assertTrue(steps.size <= 2, "one rollover at most in 2.6 s of a 60 s period")
        for (step in steps) {
            assertEquals(1, step.map { it.pin }.distinct().size, "one PIN per step")
            val seconds = step.map { it.secondsLeft }
            assertEquals(seconds.sortedDescending(), seconds, "the countdown never goes up within a step: $seconds")
        }
        val longest = steps.maxBy { it.size }
        assertTrue(longest.first().secondsLeft > longest.last().secondsLeft, "the countdown moved: ${pins.map { it.secondsLeft }}")
        assertEquals(client.core.pin(rollingId).step, pins.last().step, "the core's step")
        client.close()
        client.core.close()
    }

    @Test
    fun `a key without a Rolling PIN gives the core's reason once and the countdown ends`() = runBlocking {
        val (client, _, digitalId) = phoneWithPins("Una Unavailable")
        val ticks = withTimeout(10.seconds) { client.pinCountdown(digitalId, every = 50.milliseconds).toList() }
        val unavailable = assertIs<PinTick.Unavailable>(ticks.single())
        val notAPin = assertFailsWith<PinException.NotAPinKey> { client.core.pin(digitalId) }
        assertEquals(notAPin.reason, unavailable.reason)

        val missing = withTimeout(10.seconds) { client.pinCountdown("no-such-key").toList() }
        assertIs<PinTick.Unavailable>(missing.single())
        assertFailsWith<IllegalArgumentException> { client.pinCountdown(digitalId, every = Duration.ZERO) }
        client.close()
        client.core.close()
    }

    @Test
    fun `a shown tick's toString names the key and step but never the PIN`() = runBlocking {
        val (client, rollingId, _) = phoneWithPins("Rita Redact")
        val tick = assertIs<PinTick.Shown>(withTimeout(10.seconds) { client.pinCountdown(rollingId).take(1).toList() }.single())
        val text = tick.toString()
        assertFalse(tick.pin.pin in text, "toString printed the PIN: $text")
        assertContains(text, rollingId)
        assertContains(text, "redacted")
        assertTrue(tick.pin.pin in tick.pin.toString(), "the generated record prints it: the wrapper must not")
        client.close()
        client.core.close()
    }
}
