/**
 * [BluetoothMonitor]: what the shell knows about the radio, as the core's
 * [BluetoothState] (the core's key guide turns it into the right screen and sentence).
 * Follows the adapter's on/off broadcasts; permissions are re-read by [refresh], which
 * the app calls when it returns to the foreground (a permission can change in Settings).
 */
package app.opkey.android

import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothManager
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.PackageManager
import android.os.Build
import app.opkey.ble.BlePermissions
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import uniffi.opkey_ffi.BluetoothState

class BluetoothMonitor(context: Context) : AutoCloseable {
    private val app = context.applicationContext
    private val current = MutableStateFlow(read())
    val state: StateFlow<BluetoothState> = current.asStateFlow()

    private val receiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) = refresh()
    }

    init {
        val filter = IntentFilter(BluetoothAdapter.ACTION_STATE_CHANGED)
        // A system broadcast still reaches a receiver that other apps cannot call.
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            app.registerReceiver(receiver, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            app.registerReceiver(receiver, filter)
        }
    }

    /** The runtime permissions still to ask for (empty when all are granted). */
    fun missingPermissions(): List<String> = BlePermissions.missing(Build.VERSION.SDK_INT) {
        app.checkSelfPermission(it) == PackageManager.PERMISSION_GRANTED
    }

    fun refresh() {
        current.value = read()
    }

    private fun read(): BluetoothState {
        val adapter = app.getSystemService(BluetoothManager::class.java)?.adapter
        return when {
            adapter == null || !app.packageManager.hasSystemFeature(PackageManager.FEATURE_BLUETOOTH_LE) ->
                BluetoothState.UNSUPPORTED
            missingPermissions().isNotEmpty() -> BluetoothState.PERMISSION_MISSING
            !adapter.isEnabled -> BluetoothState.OFF
            else -> BluetoothState.READY
        }
    }

    override fun close() {
        runCatching { app.unregisterReceiver(receiver) }
    }
}
