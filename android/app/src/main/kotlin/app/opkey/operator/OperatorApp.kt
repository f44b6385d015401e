/**
 * [OperatorApp]: the process-wide pieces, made once: the core ([OpKeyClient]), the
 * Bluetooth state the key guide needs and the GATT radio the unlock uses. Opening the core
 * can fail (damaged data, a replaced Keystore key): that failure is kept and shown, with
 * the core's reason, instead of crashing.
 */
package app.opkey.operator

import android.app.Application
import app.opkey.OpKeyClient
import app.opkey.android.BluetoothMonitor
import app.opkey.android.GattBleTransport
import app.opkey.android.OpKeyAndroid
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import uniffi.opkey_ffi.OpKeyException

class OperatorApp : Application() {
    /** The core, or why it could not be opened. */
    sealed interface Core {
        data class Open(val client: OpKeyClient) : Core
        data class Broken(val error: OpKeyException) : Core
    }

    private val core = MutableStateFlow<Core?>(null)
    val coreState: StateFlow<Core?> = core.asStateFlow()

    val bluetooth: BluetoothMonitor by lazy { BluetoothMonitor(this) }
    val radio: GattBleTransport by lazy { GattBleTransport(this) }

    private val inviteHosts get() = listOf(BuildConfig.INVITE_HOST)

    override fun onCreate() {
        super.onCreate()
        open()
    }

    private fun open() {
        core.value = try {
            Core.Open(OpKeyAndroid.open(this, BuildConfig.SERVER_URL, inviteHosts))
        } catch (e: OpKeyException) {
            Core.Broken(e)
        }
    }

    /**
     * Erases this phone's OpKey data (after the core said its data cannot be opened) and
     * opens a fresh, unenrolled core: the operator needs a new invite.
     */
    fun eraseAndReopen() {
        (core.value as? Core.Open)?.client?.close()
        core.value = null
        try {
            OpKeyAndroid.erase(this, BuildConfig.SERVER_URL, inviteHosts)
        } catch (e: OpKeyException) {
            core.value = Core.Broken(e)
            return
        }
        open()
    }
}
