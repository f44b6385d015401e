//! What `OpKey.unlock` / `OpKey.lock` return and throw, and the usage events they leave:
//! [`UnlockReport`] with the machine's [`UnlockOutcome`], [`UnlockError`] when the
//! machine gave no answer, [`UsageEvent`]. Mirrored from the core with `From` impls; a
//! machine's refusal is an outcome ([`UnlockOutcome::Denied`]), not an error.
//!
//! [`UnlockError`] is its own exception (Kotlin `UnlockException`), as in the core: the
//! unlock screen handles its cases exhaustively without the invite and sync ones.

use crate::records::KeyState;
use crate::runtime::Internal;
use std::time::SystemTime;

/// What the phone asked the machine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MachineCommand {
    /// Relay on: the machine may start.
    Unlock,
    /// Relay off.
    Lock,
}

/// Why the machine refused (PROTOCOL.md 2.7); the relay is as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DenyReason {
    /// The machine could not read the request.
    Malformed,
    /// The challenge was stale or unknown (too slow, or replayed).
    StaleChallenge,
    BadCiphertext,
    /// The machine does not hold the grant, even after it was sent in full.
    UnknownGrant,
    BadGrantSignature,
    /// The grant does not name this machine.
    WrongMachine,
    NotYetValid,
    /// The grant has expired by the machine's clock.
    Expired,
    /// The machine's revocation list refuses this key (revoked or edited since).
    Revoked,
    BadSignature,
    Unsupported,
    BadRevocationList,
}

/// How the machine answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UnlockOutcome {
    /// The relay is on; the machine locks itself again after `relock_after_s` unless the
    /// engine is started.
    Unlocked { relock_after_s: u16, usage_session: u32 },
    /// The relay is off.
    Locked { usage_session: u32 },
    /// The machine refused.
    Denied { reason: DenyReason },
}

/// One unlock or lock that reached the machine.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UnlockReport {
    pub command: MachineCommand,
    pub outcome: UnlockOutcome,
    pub machine_id: String,
    /// The key whose grant was presented.
    pub key_id: String,
    /// The whole grant was sent (a cold unlock), not just the key id (a warm one).
    pub full_grant_sent: bool,
    /// Messages sent and answered: 1, or 3 when the machine asked for the full grant.
    pub round_trips: u32,
    /// Connection attempts (more than 1 after passing link failures).
    pub connect_attempts: u32,
    /// Fragment bytes written and notified, framing included.
    pub bytes_sent: u32,
    pub bytes_received: u32,
    /// From the call to the answer.
    pub elapsed_ms: u64,
    /// The usage event this attempt left in the outbox.
    pub event_id: String,
}

/// Why an unlock or lock got no answer from the machine. The variant says what the app
/// can do; `reason` says it to the person. No variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum UnlockError {
    #[error("{reason}")]
    NotEnrolled { reason: String },
    #[error("{reason}")]
    PhoneRevoked { reason: String },
    /// No key on the phone names this machine.
    #[error("{reason}")]
    NotInScope { machine_id: String, reason: String },
    /// Keys name the machine, but none is a Digital Key (PINs and cards only).
    #[error("{reason}")]
    NotADigitalKey { machine_id: String, reason: String },
    /// The Digital Key for this machine is not active now.
    #[error("{reason}")]
    NoUsableKey {
        machine_id: String,
        key_id: String,
        state: KeyState,
        reason: String,
    },
    /// The key is active but its credential has expired: sync to renew it.
    #[error("{reason}")]
    GrantExpired {
        machine_id: String,
        key_id: String,
        reason: String,
    },
    /// The phone does not know the machine's public key yet: sync.
    #[error("{reason}")]
    MachineKeyUnknown { machine_id: String, reason: String },
    /// No advertisement of the machine was seen.
    #[error("{reason}")]
    NotInRange { machine_id: String, reason: String },
    #[error("{reason}")]
    BluetoothOff { reason: String },
    /// The app may not use Bluetooth.
    #[error("{reason}")]
    PermissionMissing { reason: String },
    /// The machine did not answer in time.
    #[error("{reason}")]
    TimedOut { reason: String },
    #[error("{reason}")]
    Disconnected { reason: String },
    /// Any other radio failure (GATT errors, a transport's undeclared exception).
    #[error("{reason}")]
    Bluetooth { reason: String },
    /// The machine did not prove it is the machine chosen; the phone sent nothing.
    #[error("{reason}")]
    FakeMachine { machine_id: String, reason: String },
    /// Another machine answered than the one chosen.
    #[error("{reason}")]
    WrongMachine { machine_id: String, reason: String },
    /// The machine's messages did not follow the protocol.
    #[error("{reason}")]
    BadAnswer { reason: String },
    /// Cancelled through the call's `CancelHandle` (or the caller stopped waiting).
    #[error("{reason}")]
    Cancelled { reason: String },
    /// The phone key could not sign; trying again may work.
    #[error("{reason}")]
    Signer { reason: String },
    /// The phone key is gone or was invalidated: re-enroll with a new invite.
    #[error("{reason}")]
    PhoneKeyLost { reason: String },
    /// The on-phone database failed.
    #[error("{reason}")]
    Storage { reason: String },
    /// Something that should not happen; the reason is for a bug report.
    #[error("{reason}")]
    Internal { reason: String },
}

impl Internal for UnlockError {
    fn internal(reason: String) -> Self {
        UnlockError::Internal { reason }
    }
}

/// What a usage event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UsageEventKind {
    UnlockAttempt,
    LockAttempt,
    /// A usage session the machine reported (from unlock to relock).
    UsageSession,
}

/// One thing that happened at a machine, as the phone saw it, and whether the backend
/// has it yet.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UsageEvent {
    pub id: String,
    pub kind: UsageEventKind,
    pub key_id: Option<String>,
    pub machine_id: String,
    pub at: SystemTime,
    /// E.g. `unlocked`, `denied:expired`, `not-in-range`.
    pub outcome: String,
    pub usage_session: Option<u32>,
    pub ended_at: Option<SystemTime>,
    /// When the backend acknowledged it; null while it waits for the next sync.
    pub uploaded_at: Option<SystemTime>,
}

// ---- from the core ------------------------------------------------------------------

impl From<opkey_core::UnlockError> for UnlockError {
    fn from(e: opkey_core::UnlockError) -> Self {
        use opkey_core::{SignerError, UnlockError as Core};
        let reason = e.to_string();
        match e {
            Core::NotEnrolled => UnlockError::NotEnrolled { reason },
            Core::PhoneRevoked => UnlockError::PhoneRevoked { reason },
            Core::NotInScope { machine_id } => UnlockError::NotInScope { machine_id, reason },
            Core::NotADigitalKey { machine_id } => UnlockError::NotADigitalKey { machine_id, reason },
            Core::NoUsableKey {
                machine_id,
                key_id,
                state,
            } => UnlockError::NoUsableKey {
                machine_id,
                key_id,
                state: state.into(),
                reason,
            },
            Core::GrantExpired { machine_id, key_id } => UnlockError::GrantExpired {
                machine_id,
                key_id,
                reason,
            },
            Core::MachineKeyUnknown { machine_id } => UnlockError::MachineKeyUnknown { machine_id, reason },
            Core::NotInRange { machine_id } => UnlockError::NotInRange { machine_id, reason },
            Core::BluetoothOff => UnlockError::BluetoothOff { reason },
            Core::PermissionMissing => UnlockError::PermissionMissing { reason },
            Core::TimedOut => UnlockError::TimedOut { reason },
            Core::Disconnected => UnlockError::Disconnected { reason },
            Core::Bluetooth { .. } => UnlockError::Bluetooth { reason },
            Core::FakeMachine { machine_id } => UnlockError::FakeMachine { machine_id, reason },
            Core::WrongMachine { machine_id } => UnlockError::WrongMachine { machine_id, reason },
            Core::BadAnswer { .. } => UnlockError::BadAnswer { reason },
            Core::Cancelled => UnlockError::Cancelled { reason },
            Core::Signer(SignerError::KeyUnavailable { .. }) => UnlockError::PhoneKeyLost { reason },
            Core::Signer(_) => UnlockError::Signer { reason },
            Core::Store(_) => UnlockError::Storage { reason },
            Core::Internal { .. } => UnlockError::Internal { reason },
        }
    }
}

impl From<opkey_core::UnlockReport> for UnlockReport {
    fn from(r: opkey_core::UnlockReport) -> Self {
        UnlockReport {
            command: r.command.into(),
            outcome: r.outcome.into(),
            machine_id: r.machine_id,
            key_id: r.key_id,
            full_grant_sent: r.full_grant_sent,
            round_trips: r.round_trips,
            connect_attempts: r.connect_attempts,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            elapsed_ms: r.elapsed_ms,
            event_id: r.event_id,
        }
    }
}

impl From<opkey_core::MachineCommand> for MachineCommand {
    fn from(c: opkey_core::MachineCommand) -> Self {
        match c {
            opkey_core::MachineCommand::Unlock => MachineCommand::Unlock,
            opkey_core::MachineCommand::Lock => MachineCommand::Lock,
        }
    }
}

impl From<opkey_core::UnlockOutcome> for UnlockOutcome {
    fn from(o: opkey_core::UnlockOutcome) -> Self {
        match o {
            opkey_core::UnlockOutcome::Unlocked {
                relock_after_s,
                usage_session,
            } => UnlockOutcome::Unlocked {
                relock_after_s,
                usage_session,
            },
            opkey_core::UnlockOutcome::Locked { usage_session } => UnlockOutcome::Locked { usage_session },
            opkey_core::UnlockOutcome::Denied { reason } => UnlockOutcome::Denied {
                reason: reason.into(),
            },
        }
    }
}

impl From<opkey_core::DenyReason> for DenyReason {
    fn from(r: opkey_core::DenyReason) -> Self {
        use opkey_core::DenyReason as Core;
        match r {
            Core::Malformed => DenyReason::Malformed,
            Core::StaleChallenge => DenyReason::StaleChallenge,
            Core::BadCiphertext => DenyReason::BadCiphertext,
            Core::UnknownGrant => DenyReason::UnknownGrant,
            Core::BadGrantSignature => DenyReason::BadGrantSignature,
            Core::WrongMachine => DenyReason::WrongMachine,
            Core::NotYetValid => DenyReason::NotYetValid,
            Core::Expired => DenyReason::Expired,
            Core::Revoked => DenyReason::Revoked,
            Core::BadSignature => DenyReason::BadSignature,
            Core::Unsupported => DenyReason::Unsupported,
            Core::BadRevocationList => DenyReason::BadRevocationList,
        }
    }
}

impl From<opkey_core::OutboxEntry> for UsageEvent {
    fn from(o: opkey_core::OutboxEntry) -> Self {
        let e = o.event;
        UsageEvent {
            id: e.id,
            kind: match e.kind {
                opkey_core::UsageEventKind::UnlockAttempt => UsageEventKind::UnlockAttempt,
                opkey_core::UsageEventKind::LockAttempt => UsageEventKind::LockAttempt,
                opkey_core::UsageEventKind::UsageSession => UsageEventKind::UsageSession,
            },
            key_id: e.key_id,
            machine_id: e.machine_id,
            at: e.at.into(),
            outcome: e.outcome,
            usage_session: e.usage_session,
            ended_at: e.ended_at.map(Into::into),
            uploaded_at: o.uploaded_at.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radio_failures_keep_their_kind_and_tell_the_person_what_to_do() {
        let e: UnlockError = opkey_core::UnlockError::NotInRange {
            machine_id: "mch_1".into(),
        }
        .into();
        assert!(
            matches!(&e, UnlockError::NotInRange { machine_id, reason } if machine_id == "mch_1" && reason.contains("closer")),
            "{e:?}"
        );
        assert!(matches!(
            opkey_core::UnlockError::BluetoothOff.into(),
            UnlockError::BluetoothOff { .. }
        ));
        let lost = opkey_core::UnlockError::Signer(opkey_core::SignerError::KeyUnavailable {
            reason: "invalidated".into(),
        });
        assert!(matches!(lost.into(), UnlockError::PhoneKeyLost { .. }));
    }
}
