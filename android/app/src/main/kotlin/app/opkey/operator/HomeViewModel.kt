/**
 * [HomeViewModel]: the home screen's data, straight from the core: the guide (which stage,
 * its message, the clock warning, last sync, usage records waiting), the key list and the
 * sync state. A sync failure is not handled here: the core reports it in `syncState`.
 */
package app.opkey.operator

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import app.opkey.OpKeyClient
import app.opkey.SyncState
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.launch
import uniffi.opkey_ffi.HomeGuide
import uniffi.opkey_ffi.Key
import uniffi.opkey_ffi.OpKeyException

class HomeViewModel(private val client: OpKeyClient) : ViewModel() {
    val home: StateFlow<HomeGuide?> = client.home().stateIn(viewModelScope, SharingStarted.WhileSubscribed(5_000), null)
    val keys: StateFlow<List<Key>> = client.keys().stateIn(viewModelScope, SharingStarted.WhileSubscribed(5_000), emptyList())
    val sync: StateFlow<SyncState> = client.syncState

    fun syncNow() {
        viewModelScope.launch {
            try {
                client.sync()
            } catch (_: OpKeyException) {
                // Shown through syncState.Failed, with the core's reason.
            }
        }
    }
}
