/**
 * [SystemActions]: the few things only Android can do for the operator, each behind a
 * button the core's guide asks for: turn Bluetooth on, grant the Bluetooth permissions (or
 * open the app's settings when Android no longer asks). The date settings for a wrong clock
 * are opened by [ClockWarning].
 */
package app.opkey.operator

import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.content.Context
import android.content.Intent
import android.net.Uri
import android.provider.Settings
import androidx.activity.compose.ManagedActivityResultLauncher
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.result.ActivityResult
import androidx.activity.result.contract.ActivityResultContracts
import androidx.compose.runtime.Composable
import androidx.compose.ui.platform.LocalContext
import app.opkey.android.BluetoothMonitor

class SystemActions(
    private val context: Context,
    private val bluetooth: BluetoothMonitor,
    private val enable: ManagedActivityResultLauncher<Intent, ActivityResult>,
    private val permissions: ManagedActivityResultLauncher<Array<String>, Map<String, Boolean>>,
) {
    // Only offered once the permissions are granted (the guide says OFF after PERMISSION_MISSING).
    @SuppressLint("MissingPermission")
    fun turnOnBluetooth() = enable.launch(Intent(BluetoothAdapter.ACTION_REQUEST_ENABLE))

    fun askForPermissions() = permissions.launch(bluetooth.missingPermissions().toTypedArray())

    fun openAppSettings() = context.startActivity(
        Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", context.packageName, null))
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK),
    )
}

@Composable
fun rememberSystemActions(bluetooth: BluetoothMonitor): SystemActions {
    val context = LocalContext.current
    val enable = rememberLauncherForActivityResult(ActivityResultContracts.StartActivityForResult()) { bluetooth.refresh() }
    val permissions = rememberLauncherForActivityResult(ActivityResultContracts.RequestMultiplePermissions()) {
        bluetooth.refresh()
    }
    return SystemActions(context, bluetooth, enable, permissions)
}
