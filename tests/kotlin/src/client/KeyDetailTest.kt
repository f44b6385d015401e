/**
 * [OpKeyClient.keyDetail]: the core's guide for the latest Bluetooth state, read again
 * after key changes; a Static PIN only when the core says to show it and redacted from
 * `toString()`; the flow ends with KeyNotFound when the key leaves the phone.
 */
package opkey.ffi.tests.client

import app.opkey.OpKeyClient
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.Blocker
import uniffi.opkey_ffi.BluetoothState
import uniffi.opkey_ffi.KeyAction
import uniffi.opkey_ffi.OpKeyException

class KeyDetailTest {
    private val admin = Admin()

    @Test
    fun `a Digital Key's screen follows the Bluetooth state and the key's revocation`() = runBlocking {
        val phone = EnrolledPhone(name = "Bo Bluetooth")
        val keyId = phone.backend.createKey(phone.operatorId, phone.machineId, "cab")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        client.sync()

        val bluetooth = MutableStateFlow(BluetoothState.READY)
        val details = client.keyDetail(keyId, bluetooth).recordIn(this)
        val ready = details.awaitMatching { true }
        assertEquals(keyId, ready.key.id)
        assertEquals(KeyAction.UNLOCK, ready.guide.action)
        assertNull(ready.guide.blocker, "an active key with Bluetooth on can unlock")
        assertNull(ready.staticPin)
        assertEquals(client.core.keyGuide(keyId, BluetoothState.READY), ready.guide, "the core's guide, as it is")

        bluetooth.value = BluetoothState.OFF
        val off = details.awaitMatching { it.guide.blocker != null }
        assertEquals(Blocker.BLUETOOTH_OFF, off.guide.blocker)
        assertEquals(client.core.keyGuide(keyId, BluetoothState.OFF).message, off.guide.message)

        bluetooth.value = BluetoothState.PERMISSION_MISSING
        details.awaitMatching { it.guide.blocker == Blocker.BLUETOOTH_PERMISSION_MISSING }
        bluetooth.value = BluetoothState.READY
        details.awaitMatching { it.guide.blocker == null }

        admin.revokeKey(keyId)
        client.sync()
        val revoked = details.awaitMatching { it.guide.blocker == Blocker.KEY_REVOKED }
        assertFalse(revoked.key.usable)

        details.stop()
        client.close()
        client.core.close()
    }

    @Test
    fun `PIN keys say how to use them, a Static PIN is shown but never printed`() = runBlocking {
        val phone = EnrolledPhone(name = "Pia Pin")
        val (rollingId, _) = phone.backend.createRollingPinKey(phone.operatorId, phone.machineId)
        val staticId = admin.createStaticPinKey(phone.operatorId, phone.machineId, pin = "735914")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        client.sync()
        // Bluetooth plays no part in a keypad PIN.
        val off = MutableStateFlow(BluetoothState.OFF)

        val rolling = client.keyDetail(rollingId, off).first()
        assertEquals(KeyAction.ROLLING_PIN, rolling.guide.action)
        assertNull(rolling.guide.blocker, "the seed came with the sync")
        assertNull(rolling.staticPin)
        assertEquals(client.core.keyGuide(rollingId, BluetoothState.OFF), rolling.guide)

        val static = client.keyDetail(staticId, off).first()
        assertEquals(KeyAction.STATIC_PIN, static.guide.action)
        assertNull(static.guide.blocker)
        val pin = assertNotNull(static.staticPin)
        assertEquals("735914", pin.pin)
        assertEquals(client.core.staticPin(staticId), pin)
        assertFalse("735914" in static.toString(), "toString printed the PIN: $static")
        assertContains(static.toString(), "redacted")
        assertTrue("735914" in pin.toString(), "the generated record prints it: the wrapper must not")

        client.close()
        client.core.close()
    }

    @Test
    fun `the screen of a key deleted from the phone ends with KeyNotFound`() = runBlocking {
        val phone = EnrolledPhone(name = "Dina Delete")
        val keyId = phone.backend.createKey(phone.operatorId, phone.machineId, "gone soon")
        val client = OpKeyClient(phone.open())
        client.redeem(phone.link)
        client.sync()
        val details = client.keyDetail(keyId, MutableStateFlow(BluetoothState.READY)).recordIn(this)
        details.awaitMatching { it.key.id == keyId }

        admin.deleteKey(keyId)
        client.sync()
        val end = assertIs<OpKeyException.KeyNotFound>(details.awaitEnd())
        assertEquals(keyId, end.id)
        client.close()
        client.core.close()
    }
}
