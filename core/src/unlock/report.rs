//! What an unlock or lock returns to the app: [`UnlockReport`] with the machine's
//! [`UnlockOutcome`]. Plain data, `Serialize` for the CLI; nothing secret.

use opkey_protocol::ble::ReasonCode;
use serde::Serialize;

/// What the phone asks the machine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineCommand {
    /// Relay on: the machine may start.
    Unlock,
    /// Relay off.
    Lock,
}

/// Why the machine refused (PROTOCOL.md 2.7); the relay is as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
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

impl DenyReason {
    /// The status code on the wire.
    pub fn code(self) -> u8 {
        ReasonCode::from(self).code()
    }

    /// A stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Malformed => "malformed",
            DenyReason::StaleChallenge => "stale-challenge",
            DenyReason::BadCiphertext => "bad-ciphertext",
            DenyReason::UnknownGrant => "unknown-grant",
            DenyReason::BadGrantSignature => "bad-grant-signature",
            DenyReason::WrongMachine => "wrong-machine",
            DenyReason::NotYetValid => "not-yet-valid",
            DenyReason::Expired => "expired",
            DenyReason::Revoked => "revoked",
            DenyReason::BadSignature => "bad-signature",
            DenyReason::Unsupported => "unsupported",
            DenyReason::BadRevocationList => "bad-revocation-list",
        }
    }
}

impl From<ReasonCode> for DenyReason {
    fn from(r: ReasonCode) -> Self {
        match r {
            ReasonCode::Malformed => DenyReason::Malformed,
            ReasonCode::StaleChallenge => DenyReason::StaleChallenge,
            ReasonCode::BadCiphertext => DenyReason::BadCiphertext,
            ReasonCode::UnknownGrant => DenyReason::UnknownGrant,
            ReasonCode::BadGrantSignature => DenyReason::BadGrantSignature,
            ReasonCode::WrongMachine => DenyReason::WrongMachine,
            ReasonCode::NotYetValid => DenyReason::NotYetValid,
            ReasonCode::Expired => DenyReason::Expired,
            ReasonCode::Revoked => DenyReason::Revoked,
            ReasonCode::BadSignature => DenyReason::BadSignature,
            ReasonCode::Unsupported => DenyReason::Unsupported,
            ReasonCode::BadRevocationList => DenyReason::BadRevocationList,
        }
    }
}

impl From<DenyReason> for ReasonCode {
    fn from(r: DenyReason) -> Self {
        match r {
            DenyReason::Malformed => ReasonCode::Malformed,
            DenyReason::StaleChallenge => ReasonCode::StaleChallenge,
            DenyReason::BadCiphertext => ReasonCode::BadCiphertext,
            DenyReason::UnknownGrant => ReasonCode::UnknownGrant,
            DenyReason::BadGrantSignature => ReasonCode::BadGrantSignature,
            DenyReason::WrongMachine => ReasonCode::WrongMachine,
            DenyReason::NotYetValid => ReasonCode::NotYetValid,
            DenyReason::Expired => ReasonCode::Expired,
            DenyReason::Revoked => ReasonCode::Revoked,
            DenyReason::BadSignature => ReasonCode::BadSignature,
            DenyReason::Unsupported => ReasonCode::Unsupported,
            DenyReason::BadRevocationList => ReasonCode::BadRevocationList,
        }
    }
}

/// How the machine answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum UnlockOutcome {
    /// The relay is on; the machine locks itself again after `relock_after_s` unless
    /// the engine is started.
    Unlocked { relock_after_s: u16, usage_session: u32 },
    /// The relay is off.
    Locked { usage_session: u32 },
    /// The machine refused.
    Denied { reason: DenyReason },
}

impl UnlockOutcome {
    /// `unlocked`, `locked` or `denied:<reason>`: the outcome of the usage event.
    pub fn code(&self) -> String {
        match self {
            UnlockOutcome::Unlocked { .. } => "unlocked".into(),
            UnlockOutcome::Locked { .. } => "locked".into(),
            UnlockOutcome::Denied { reason } => format!("denied:{}", reason.as_str()),
        }
    }

    pub fn usage_session(&self) -> Option<u32> {
        match self {
            UnlockOutcome::Unlocked { usage_session, .. } | UnlockOutcome::Locked { usage_session } => {
                Some(*usage_session).filter(|s| *s != 0)
            }
            UnlockOutcome::Denied { .. } => None,
        }
    }
}

/// One unlock or lock that reached the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlockReport {
    pub command: MachineCommand,
    pub outcome: UnlockOutcome,
    pub machine_id: String,
    /// The key whose grant was presented.
    pub key_id: String,
    /// The whole grant was sent (a cold unlock), not just the key id.
    pub full_grant_sent: bool,
    /// Messages the phone sent and waited on an answer for: 1, or 3 when the machine
    /// asked for the full grant (request, Hello request, request).
    pub round_trips: u32,
    /// Connection attempts (more than 1 after passing link failures).
    pub connect_attempts: u32,
    /// Fragment bytes written and notified on the link, framing included.
    pub bytes_sent: u32,
    pub bytes_received: u32,
    /// From the tap to the answer.
    pub elapsed_ms: u64,
    /// The id of the usage event this attempt left in the outbox.
    pub event_id: String,
}
