// The values OpKeyClient hands the app: SyncState, KeyDetail, PinTick and UnlockResult.
// Plain data, the Swift mirror of the Kotlin layer (package app.opkey); every field comes
// from the core as it is, nothing is computed here.
import Foundation

/// Where the app's syncs are, told by the core's change events and the running sync's
/// progress.
public enum SyncState: Equatable, Sendable {
    case idle
    /// `progress` is nil until the core reports the first page.
    case running(progress: SyncProgress?)
    case done(report: SyncReport)
    /// `reason` is the core's sentence for the person; `cancelled` when it was stopped.
    case failed(reason: String, cancelled: Bool)
}

/// One key's screen: the key, what the core says to do with it now, and its Static PIN
/// when the core's action is to show one.
public struct KeyDetail: Equatable, Sendable {
    public let key: Key
    public let guide: KeyGuide
    public let staticPin: StaticPin?
}

/// One second of a Rolling PIN screen.
public enum PinTick: Equatable, Sendable {
    /// The PIN to type now; `pin.secondsLeft` is the countdown.
    case shown(pin: PinView)
    /// Why no PIN can be shown (the core's sentence).
    case unavailable(reason: String)
}

/// How an unlock or lock ended, for the unlock screen.
public enum UnlockResult: Equatable, Sendable {
    /// The relay is on (`report.outcome` holds `relockAfterS`).
    case opened(report: UnlockReport)
    /// The lock command was done.
    case closed(report: UnlockReport)
    /// The machine refused; `message` is the core's sentence for `reason`.
    case refused(report: UnlockReport, reason: DenyReason, message: String)
    /// No answer from the machine, or blocked before the radio; `guide.blocker` picks the
    /// screen, `guide.retry` whether a retry button makes sense.
    case failed(guide: UnlockErrorGuide)
}
