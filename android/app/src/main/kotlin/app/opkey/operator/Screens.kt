/**
 * The app's screens but the key screen: the root (which follows the core's state), the
 * welcome and invite screens, the key list with the sync status, and the screen for a
 * core that could not be opened. Composables only draw state and forward clicks; every
 * sentence that explains something is the core's.
 */
package app.opkey.operator

import android.content.Intent
import android.provider.Settings
import android.text.format.DateUtils
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import app.opkey.OpKeyClient
import app.opkey.SyncState
import uniffi.opkey_ffi.HomeGuide
import uniffi.opkey_ffi.Key
import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.Stage

@Composable
fun OperatorRoot(app: OperatorApp, navigation: Navigation) {
    val core by app.coreState.collectAsStateWithLifecycle()
    when (val state = core) {
        null -> Centered { CircularProgressIndicator() }
        is OperatorApp.Core.Broken -> BrokenScreen(state.error, onErase = app::eraseAndReopen)
        is OperatorApp.Core.Open -> {
            val stack by navigation.top.collectAsStateWithLifecycle()
            when (val screen = stack.last()) {
                Screen.Home -> HomeScreen(state.client, navigation)
                is Screen.Invite -> InviteScreen(state.client, screen.input, resume = false, onDone = navigation::home)
                Screen.ResumeInvite -> InviteScreen(state.client, "", resume = true, onDone = navigation::home)
                is Screen.Key -> KeyScreen(app, state.client, screen.keyId, onBack = { navigation.back() })
            }
        }
    }
}

@Composable
private fun HomeScreen(client: OpKeyClient, navigation: Navigation) {
    val model = viewModel(key = "home:${client.hashCode()}") { HomeViewModel(client) }
    val guide by model.home.collectAsStateWithLifecycle()
    val home = guide
    if (home == null) {
        Centered { CircularProgressIndicator() }
        return
    }
    when (home.stage) {
        Stage.WELCOME, Stage.PHONE_REVOKED -> WelcomeScreen(home.message) { navigation.open(Screen.Invite(it)) }
        Stage.RESUME_INVITE -> Page {
            Text(home.message)
            Button(onClick = { navigation.open(Screen.ResumeInvite) }) { Text(stringResource(R.string.resume_invite)) }
        }
        Stage.KEYS -> {
            val keys by model.keys.collectAsStateWithLifecycle()
            val sync by model.sync.collectAsStateWithLifecycle()
            KeyListScreen(home, keys, sync, onSync = model::syncNow, onKey = { navigation.open(Screen.Key(it.id)) })
        }
    }
}

/** First start, or after the backend withdrew this phone: the core's message and a place for the code. */
@Composable
private fun WelcomeScreen(message: String, onInvite: (String) -> Unit) = Page {
    // Not saved with the activity's state: an invite code is a secret.
    var code by remember { mutableStateOf("") }
    Text(stringResource(R.string.welcome_title), style = MaterialTheme.typography.headlineMedium)
    Text(message)
    OutlinedTextField(
        value = code,
        onValueChange = { code = it },
        label = { Text(stringResource(R.string.invite_code_label)) },
        supportingText = { Text(stringResource(R.string.invite_code_hint)) },
        singleLine = true,
        modifier = Modifier.fillMaxWidth(),
    )
    Button(onClick = { onInvite(code) }, enabled = code.isNotBlank()) { Text(stringResource(R.string.redeem)) }
}

/** Redeems [input] (or resumes the remembered redeem) as soon as it opens; Cancel stops it. */
@Composable
private fun InviteScreen(client: OpKeyClient, input: String, resume: Boolean, onDone: () -> Unit) {
    // One model per invite and core (keyed by a hash: the token is not kept as a key).
    val model = viewModel(key = "invite:${client.hashCode()}:$resume:${input.hashCode()}") { InviteViewModel(client) }
    val state by model.state.collectAsStateWithLifecycle()
    LaunchedEffect(input, resume) {
        if (model.state.value == InviteState.Idle) if (resume) model.resume() else model.redeem(input)
    }
    Page {
        when (val s = state) {
            InviteState.Idle, InviteState.Working -> {
                CircularProgressIndicator()
                Text(stringResource(R.string.redeeming))
                OutlinedButton(onClick = { model.cancel(); onDone() }) { Text(stringResource(R.string.cancel)) }
            }
            is InviteState.Failed -> {
                ErrorText(s.error.message.orEmpty())
                Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    Button(onClick = { if (resume) model.resume() else model.redeem(input) }) {
                        Text(stringResource(R.string.try_again))
                    }
                    OutlinedButton(onClick = onDone) { Text(stringResource(R.string.back)) }
                }
            }
            is InviteState.Done -> LaunchedEffect(s) { onDone() }
        }
    }
}

@Composable
private fun KeyListScreen(home: HomeGuide, keys: List<Key>, sync: SyncState, onSync: () -> Unit, onKey: (Key) -> Unit) {
    LazyColumn(Modifier.fillMaxSize().padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        item { Text(stringResource(R.string.keys_title), style = MaterialTheme.typography.headlineMedium) }
        item { Text(home.message) }
        home.clockWarning?.let { warning -> item { ClockWarning(warning) } }
        item { SyncCard(home, sync, onSync) }
        if (keys.isEmpty()) item { Text(stringResource(R.string.no_keys)) }
        items(keys, key = { it.id }) { key -> KeyRow(key, onClick = { onKey(key) }) }
    }
}

@Composable
private fun KeyRow(key: Key, onClick: () -> Unit) = Card(Modifier.fillMaxWidth().clickable(onClick = onClick)) {
    Column(Modifier.padding(16.dp)) {
        Text(key.description, style = MaterialTheme.typography.titleMedium)
        Text(key.machines.joinToString { it.name })
        Text(key.organizationName, style = MaterialTheme.typography.bodySmall)
    }
}

/** Last sync, usage records waiting, what the sync is doing or why it failed, and a button to sync now. */
@Composable
private fun SyncCard(home: HomeGuide, sync: SyncState, onSync: () -> Unit) = Card(Modifier.fillMaxWidth()) {
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(4.dp)) {
        val last = home.lastSyncAt
        Text(
            if (last == null) {
                stringResource(R.string.never_synced)
            } else {
                stringResource(R.string.last_sync, DateUtils.getRelativeTimeSpanString(last.toEpochMilli()))
            },
        )
        if (home.usageEventsWaiting > 0u) Text(stringResource(R.string.events_waiting, home.usageEventsWaiting.toInt()))
        if (sync is SyncState.Failed && !sync.cancelled) ErrorText(sync.reason)
        val running = sync is SyncState.Running
        Button(onClick = onSync, enabled = !running) {
            Text(stringResource(if (running) R.string.syncing else R.string.sync_now))
        }
    }
}

/** The core could not open this phone's data: its reason, and the way out when the data is lost anyway. */
@Composable
private fun BrokenScreen(error: OpKeyException, onErase: () -> Unit) = Page {
    ErrorText(error.message.orEmpty())
    if (error is OpKeyException.DataKeyMismatch || error is OpKeyException.PhoneKeyLost) {
        Button(onClick = onErase) { Text(stringResource(R.string.erase_and_restart)) }
    }
}

@Composable
fun ClockWarning(warning: String) {
    val context = LocalContext.current
    Card(Modifier.fillMaxWidth()) {
        Column(Modifier.padding(16.dp)) {
            ErrorText(warning)
            OutlinedButton(onClick = {
                context.startActivity(Intent(Settings.ACTION_DATE_SETTINGS).addFlags(Intent.FLAG_ACTIVITY_NEW_TASK))
            }) { Text(stringResource(R.string.date_settings)) }
        }
    }
}

@Composable
fun ErrorText(text: String) = Text(text, color = MaterialTheme.colorScheme.error)

@Composable
fun Page(content: @Composable () -> Unit) = Column(
    Modifier.fillMaxSize().padding(24.dp),
    verticalArrangement = Arrangement.spacedBy(16.dp),
) { content() }

@Composable
fun Centered(content: @Composable () -> Unit) = Column(
    Modifier.fillMaxSize(),
    verticalArrangement = Arrangement.Center,
    horizontalAlignment = Alignment.CenterHorizontally,
) { content() }
