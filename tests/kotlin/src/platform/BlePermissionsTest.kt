package opkey.ffi.tests.platform

import app.opkey.ble.BlePermissions
import kotlin.test.assertEquals
import org.junit.jupiter.api.Test

/** Android 12 and later ask for the Bluetooth permissions; older versions for fine location. */
class BlePermissionsTest {
    @Test
    fun `Android 12 and later need scan and connect, never location`() {
        for (sdk in listOf(31, 33, 35)) {
            assertEquals(listOf("android.permission.BLUETOOTH_SCAN", "android.permission.BLUETOOTH_CONNECT"), BlePermissions.required(sdk))
        }
    }

    @Test
    fun `Android 8 to 11 need fine location for a BLE scan`() {
        for (sdk in 26..30) assertEquals(listOf("android.permission.ACCESS_FINE_LOCATION"), BlePermissions.required(sdk))
    }

    @Test
    fun `only what is not granted is asked for`() {
        val granted = setOf(BlePermissions.BLUETOOTH_SCAN)
        assertEquals(listOf(BlePermissions.BLUETOOTH_CONNECT), BlePermissions.missing(34) { it in granted })
        assertEquals(emptyList(), BlePermissions.missing(34) { true })
        assertEquals(listOf(BlePermissions.ACCESS_FINE_LOCATION), BlePermissions.missing(29) { it in granted })
    }
}
