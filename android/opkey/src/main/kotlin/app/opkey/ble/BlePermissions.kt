/**
 * [BlePermissions]: which runtime permissions an OpKey unlock needs on which Android
 * version. From Android 12 (API 31) the Bluetooth permissions are their own
 * (`BLUETOOTH_SCAN` declared `neverForLocation`, `BLUETOOTH_CONNECT`); before, a BLE scan
 * needs fine location. Pure JVM (permission names as strings), so the rule is tested on
 * the desktop and the transport and the app ask for the same list.
 */
package app.opkey.ble

object BlePermissions {
    const val BLUETOOTH_SCAN = "android.permission.BLUETOOTH_SCAN"
    const val BLUETOOTH_CONNECT = "android.permission.BLUETOOTH_CONNECT"
    const val ACCESS_FINE_LOCATION = "android.permission.ACCESS_FINE_LOCATION"

    /** Android 12, where the Bluetooth runtime permissions appeared. */
    const val S = 31

    /** The runtime permissions to hold before scanning and connecting on [sdkInt]. */
    fun required(sdkInt: Int): List<String> =
        if (sdkInt >= S) listOf(BLUETOOTH_SCAN, BLUETOOTH_CONNECT) else listOf(ACCESS_FINE_LOCATION)

    /** The ones of [required] that [isGranted] says are missing, in the order to ask for them. */
    fun missing(sdkInt: Int, isGranted: (String) -> Boolean): List<String> = required(sdkInt).filterNot(isGranted)
}
