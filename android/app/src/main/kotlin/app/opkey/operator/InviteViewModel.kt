/**
 * [InviteViewModel]: redeeming an invite (a link from the SMS or a typed code), or
 * finishing one the core remembers as half done. Leaving the screen cancels the redeem
 * (the client turns coroutine cancellation into the core's cancel). Errors are the core's
 * typed exceptions, shown with their reason.
 */
package app.opkey.operator

import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import app.opkey.OpKeyClient
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import uniffi.opkey_ffi.Enrollment
import uniffi.opkey_ffi.OpKeyException

sealed interface InviteState {
    data object Idle : InviteState
    data object Working : InviteState
    data class Failed(val error: OpKeyException) : InviteState
    data class Done(val enrollment: Enrollment) : InviteState
}

class InviteViewModel(private val client: OpKeyClient) : ViewModel() {
    private val current = MutableStateFlow<InviteState>(InviteState.Idle)
    val state: StateFlow<InviteState> = current.asStateFlow()
    private var job: Job? = null

    fun redeem(input: String) = run { client.redeem(input) }

    fun resume() = run { client.resumeRedeem() }

    fun cancel() {
        job?.cancel()
        current.value = InviteState.Idle
    }

    private fun run(step: suspend () -> Enrollment) {
        if (job?.isActive == true) return
        current.value = InviteState.Working
        job = viewModelScope.launch {
            current.value = try {
                InviteState.Done(step())
            } catch (e: OpKeyException) {
                InviteState.Failed(e)
            }
        }
    }
}
