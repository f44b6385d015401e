/**
 * [Navigation]: which screen is on top, as a small stack the activity's back button pops.
 * The home screen's content itself follows the core's `HomeGuide.stage`; this only adds
 * the screens the operator opens (an invite being redeemed, a key).
 */
package app.opkey.operator

import androidx.lifecycle.ViewModel
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow

sealed interface Screen {
    data object Home : Screen
    /** An invite link or code: a secret, so it never shows in toString. */
    class Invite(val input: String) : Screen {
        override fun toString() = "Invite(…)"
    }
    data object ResumeInvite : Screen
    data class Key(val keyId: String) : Screen
}

class Navigation : ViewModel() {
    private val stack = MutableStateFlow<List<Screen>>(listOf(Screen.Home))
    val top: StateFlow<List<Screen>> = stack.asStateFlow()

    fun open(screen: Screen) {
        stack.value = stack.value + screen
    }

    /** An invite link that opened the app replaces whatever was open. */
    fun openInvite(link: String) {
        stack.value = listOf(Screen.Home, Screen.Invite(link))
    }

    /** False when already home (the activity then finishes). */
    fun back(): Boolean {
        if (stack.value.size <= 1) return false
        stack.value = stack.value.dropLast(1)
        return true
    }

    fun home() {
        stack.value = listOf(Screen.Home)
    }
}
