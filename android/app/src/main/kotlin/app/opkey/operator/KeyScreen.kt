/**
 * [KeyScreen]: one key, drawn from the core's key guide. The guide's action picks the
 * body (Unlock / Lock buttons per machine, the Rolling PIN with its countdown, the static
 * PIN, the card id); its blocker, when there is one, picks the button that can clear it
 * (turn Bluetooth on, grant the permission); its message and clock warning are shown as
 * given. An unlock's result is the client's [UnlockResult], explained by the core's text.
 */
package app.opkey.operator

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Row
import androidx.compose.material3.Button
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontFamily
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import app.opkey.KeyDetail
import app.opkey.OpKeyClient
import app.opkey.PinTick
import app.opkey.UnlockResult
import uniffi.opkey_ffi.Blocker
import uniffi.opkey_ffi.KeyAction
import uniffi.opkey_ffi.UnlockOutcome

@Composable
fun KeyScreen(app: OperatorApp, client: OpKeyClient, keyId: String, onBack: () -> Unit) {
    val model = viewModel(key = "key:${client.hashCode()}:$keyId") { KeyViewModel(client, app.bluetooth, app.radio, keyId) }
    val detail by model.detail.collectAsStateWithLifecycle()
    val pin by model.pin.collectAsStateWithLifecycle()
    val radio by model.radioState.collectAsStateWithLifecycle()
    val actions = rememberSystemActions(model.bluetooth)
    val shown = detail
    Page {
        if (shown == null) {
            CircularProgressIndicator()
        } else {
            Text(shown.key.description, style = MaterialTheme.typography.headlineMedium)
            Text(shown.key.organizationName)
            shown.guide.clockWarning?.let { ClockWarning(it) }
            Text(shown.guide.message)
            shown.guide.blocker?.let { BlockerAction(it, actions) }
            when (shown.guide.action) {
                KeyAction.UNLOCK -> UnlockBody(shown, radio, model)
                KeyAction.ROLLING_PIN -> RollingPin(pin)
                KeyAction.STATIC_PIN -> shown.staticPin?.let { BigValue(stringResource(R.string.static_pin), it.pin) }
                KeyAction.CARD -> shown.key.cardId?.let { BigValue(stringResource(R.string.card_id), it) }
            }
        }
        OutlinedButton(onClick = onBack) { Text(stringResource(R.string.back)) }
    }
}

/** The button that can clear a blocker the shell can do something about; none for the others. */
@Composable
private fun BlockerAction(blocker: Blocker, actions: SystemActions) {
    when (blocker) {
        Blocker.BLUETOOTH_OFF -> Button(onClick = actions::turnOnBluetooth) { Text(stringResource(R.string.turn_on_bluetooth)) }
        Blocker.BLUETOOTH_PERMISSION_MISSING -> Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(onClick = actions::askForPermissions) { Text(stringResource(R.string.allow_bluetooth)) }
            OutlinedButton(onClick = actions::openAppSettings) { Text(stringResource(R.string.open_settings)) }
        }
        else -> Unit
    }
}

@Composable
private fun UnlockBody(detail: KeyDetail, radio: RadioState, model: KeyViewModel) {
    // The core's guide says whether the key can be used now; a blocker shows its own button above.
    val usable = detail.guide.blocker == null
    when (radio) {
        is RadioState.Working -> {
            CircularProgressIndicator()
            Text(stringResource(R.string.unlocking))
            OutlinedButton(onClick = model::cancel) { Text(stringResource(R.string.cancel)) }
        }
        is RadioState.Finished -> {
            UnlockOutcomeText(radio.result)
            val retry = (radio.result as? UnlockResult.Failed)?.guide?.retry ?: false
            Button(onClick = model::dismiss) { Text(stringResource(if (retry) R.string.try_again else R.string.back)) }
        }
        RadioState.Idle -> detail.key.machines.forEach { machine ->
            Text(machine.name, style = MaterialTheme.typography.titleMedium)
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Button(onClick = { model.unlock(machine.id) }, enabled = usable) { Text(stringResource(R.string.unlock)) }
                OutlinedButton(onClick = { model.lock(machine.id) }, enabled = usable) { Text(stringResource(R.string.lock)) }
            }
        }
    }
}

@Composable
private fun UnlockOutcomeText(result: UnlockResult) {
    when (result) {
        is UnlockResult.Opened -> {
            val relock = (result.report.outcome as? UnlockOutcome.Unlocked)?.relockAfterS?.toInt() ?: 0
            Text(stringResource(R.string.opened, relock), style = MaterialTheme.typography.titleLarge)
        }
        is UnlockResult.Closed -> Text(stringResource(R.string.closed), style = MaterialTheme.typography.titleLarge)
        is UnlockResult.Refused -> ErrorText(result.message)
        is UnlockResult.Failed -> ErrorText(result.guide.message)
    }
}

/** The Rolling PIN in big digits, with the seconds the core says it has left. */
@Composable
private fun RollingPin(tick: PinTick?) {
    when (tick) {
        null -> CircularProgressIndicator()
        is PinTick.Shown -> {
            BigValue(stringResource(R.string.rolling_pin), tick.pin.pin)
            Text(stringResource(R.string.pin_seconds_left, tick.pin.secondsLeft.toInt()))
        }
        is PinTick.Unavailable -> ErrorText(tick.reason)
    }
}

@Composable
private fun BigValue(label: String, value: String) {
    Text(label, style = MaterialTheme.typography.labelLarge)
    Text(value, fontSize = 48.sp, fontFamily = FontFamily.Monospace, letterSpacing = 6.sp)
}
