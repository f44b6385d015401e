/**
 * [KeyViewModel]: one key's screen. The core's key guide (with the shell's Bluetooth
 * state) says what the key does and what blocks it; the Rolling PIN ticks come from the
 * core every second; an unlock or lock runs over the GATT radio and ends in the client's
 * [UnlockResult]. Nothing here decides what a state means.
 */
package app.opkey.operator

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import app.opkey.KeyDetail
import app.opkey.OpKeyClient
import app.opkey.PinTick
import app.opkey.UnlockResult
import app.opkey.android.BluetoothMonitor
import kotlinx.coroutines.ExperimentalCoroutinesApi
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.flatMapLatest
import kotlinx.coroutines.flow.flowOf
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.launch
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.KeyAction
import uniffi.opkey_ffi.MachineCommand

sealed interface RadioState {
    data object Idle : RadioState
    data class Working(val command: MachineCommand, val machineId: String) : RadioState
    data class Finished(val result: UnlockResult) : RadioState
}

@OptIn(ExperimentalCoroutinesApi::class)
class KeyViewModel(
    private val client: OpKeyClient,
    val bluetooth: BluetoothMonitor,
    private val radio: BleTransport,
    keyId: String,
) : ViewModel() {
    val detail: StateFlow<KeyDetail?> = client.keyDetail(keyId, bluetooth.state)
        .stateIn(viewModelScope, SharingStarted.WhileSubscribed(5_000), null)

    /** Rolling PIN ticks while the key's action is the Rolling PIN; null otherwise. */
    val pin: StateFlow<PinTick?> = detail
        .map { it?.guide?.action == KeyAction.ROLLING_PIN }
        .distinctUntilChanged()
        .flatMapLatest { rolling -> if (rolling) client.pinCountdown(keyId) else flowOf(null) }
        .stateIn(viewModelScope, SharingStarted.WhileSubscribed(5_000), null)

    private val current = MutableStateFlow<RadioState>(RadioState.Idle)
    val radioState: StateFlow<RadioState> = current.asStateFlow()
    private var job: Job? = null

    fun unlock(machineId: String) = send(MachineCommand.UNLOCK, machineId)

    fun lock(machineId: String) = send(MachineCommand.LOCK, machineId)

    /** Stops a running unlock (the core closes the connection). */
    fun cancel() {
        job?.cancel()
        current.value = RadioState.Idle
    }

    fun dismiss() {
        if (current.value is RadioState.Finished) current.value = RadioState.Idle
    }

    private fun send(command: MachineCommand, machineId: String) {
        if (job?.isActive == true) return
        current.value = RadioState.Working(command, machineId)
        job = viewModelScope.launch {
            val result = when (command) {
                MachineCommand.UNLOCK -> client.unlock(machineId, radio)
                MachineCommand.LOCK -> client.lock(machineId, radio)
            }
            current.value = RadioState.Finished(result)
        }
    }
}
