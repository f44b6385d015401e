/**
 * The values [OpKeyClient] hands the app: [SyncState], [KeyDetail], [PinTick] and
 * [UnlockResult]. Plain data: every field comes from the core as it is, nothing is computed
 * here. Whatever holds a PIN redacts it from `toString()`, so a log line or a crash report
 * never carries one.
 */
package app.opkey

import uniffi.opkey_ffi.DenyReason
import uniffi.opkey_ffi.Key
import uniffi.opkey_ffi.KeyGuide
import uniffi.opkey_ffi.PinView
import uniffi.opkey_ffi.StaticPin
import uniffi.opkey_ffi.SyncProgress
import uniffi.opkey_ffi.SyncReport
import uniffi.opkey_ffi.UnlockErrorGuide
import uniffi.opkey_ffi.UnlockReport

/** Where the phone's syncs are, told by the core's change events and the running sync's progress. */
sealed interface SyncState {
    /** No sync since the client was made. */
    data object Idle : SyncState

    /** A sync is running; [progress] is null until the core reports its first step. */
    data class Running(val progress: SyncProgress?) : SyncState

    /** The last sync brought the keys up to date. */
    data class Done(val report: SyncReport) : SyncState

    /**
     * The last sync failed and the store is as it was; [reason] is the core's sentence for
     * the operator, [cancelled] is true when it was stopped rather than failed.
     */
    data class Failed(val reason: String, val cancelled: Boolean) : SyncState
}

/**
 * One key's screen: the [key], what the core says to do with it now ([guide]: its action,
 * its blocker and the sentence), and its [staticPin] when the core's action is to show a
 * Static PIN and nothing blocks it (null otherwise).
 */
data class KeyDetail(val key: Key, val guide: KeyGuide, val staticPin: StaticPin?) {
    /** The Static PIN is left out: only whether there is one. */
    override fun toString(): String =
        "KeyDetail(key=$key, guide=$guide, staticPin=${if (staticPin == null) "none" else "<redacted>"})"
}

/** One tick of a Rolling PIN screen. */
sealed interface PinTick {
    /** The PIN to type now; [PinView.secondsLeft] is the countdown the core computed. */
    data class Shown(val pin: PinView) : PinTick {
        /** Names the key and the step, never the PIN. */
        override fun toString(): String =
            "PinTick.Shown(keyId=${pin.keyId}, step=${pin.step}, secondsLeft=${pin.secondsLeft}, pin=<redacted>)"
    }

    /** No PIN can be shown; [reason] is the core's sentence for the operator. */
    data class Unavailable(val reason: String) : PinTick
}

/** How an unlock or a lock ended, for the unlock screen. */
sealed interface UnlockResult {
    /** The relay is on; `report.outcome` holds `relockAfterS`. */
    data class Opened(val report: UnlockReport) : UnlockResult

    /** The lock command was done: the relay is off. */
    data class Closed(val report: UnlockReport) : UnlockResult

    /** The machine answered and refused; [message] is the core's sentence for [reason]. */
    data class Refused(val report: UnlockReport, val reason: DenyReason, val message: String) : UnlockResult

    /**
     * No answer from the machine, or stopped on the phone before any radio traffic:
     * `guide.blocker` picks the screen, `guide.retry` whether a retry button makes sense,
     * `guide.message` is the core's sentence.
     */
    data class Failed(val guide: UnlockErrorGuide) : UnlockResult
}
