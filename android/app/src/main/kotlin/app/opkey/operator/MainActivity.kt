/**
 * [MainActivity]: the one activity. Takes invite links (App Link or `opkey://invite/…`)
 * from its intents and hands them, unparsed, to the invite screen (the core parses and
 * judges them); re-reads the Bluetooth state when it comes back to the foreground; the
 * back button pops [Navigation].
 */
package app.opkey.operator

import android.content.Intent
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.OnBackPressedCallback
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface

class MainActivity : ComponentActivity() {
    private val navigation: Navigation by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        if (savedInstanceState == null) takeInvite(intent)
        onBackPressedDispatcher.addCallback(
            this,
            object : OnBackPressedCallback(true) {
                override fun handleOnBackPressed() {
                    if (!navigation.back()) finish()
                }
            },
        )
        val app = application as OperatorApp
        setContent {
            MaterialTheme {
                Surface { OperatorRoot(app, navigation) }
            }
        }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        takeInvite(intent)
    }

    override fun onResume() {
        super.onResume()
        // A permission or the radio may have changed in Settings meanwhile.
        (application as OperatorApp).bluetooth.refresh()
    }

    private fun takeInvite(intent: Intent?) {
        if (intent?.action != Intent.ACTION_VIEW) return
        val link = intent.dataString ?: return
        navigation.openInvite(link)
    }
}
