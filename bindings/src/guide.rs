//! What the apps tell the operator, mirrored from [`opkey_core::guide`]: the top screen
//! ([`HomeGuide`]), what stops a key now ([`KeyGuide`], given the shell's
//! [`BluetoothState`]), what a failed unlock asks ([`UnlockErrorGuide`]) and the sentence
//! for a machine's refusal. The shells draw these; every decision is the core's.

use crate::records::KeyState;
use crate::unlock::{DenyReason, UnlockError};
use std::time::SystemTime;

/// What the shell knows about the phone's Bluetooth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BluetoothState {
    Ready,
    Off,
    /// Android 12+ "Nearby devices" / iOS Bluetooth permission not granted.
    PermissionMissing,
    /// No Bluetooth Low Energy on this phone.
    Unsupported,
}

/// The app's top screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Stage {
    /// Not enrolled: open the invite link from the SMS or type its code.
    Welcome,
    /// A redeem was interrupted: `resume_redeem` finishes it.
    ResumeInvite,
    /// The phone's access was withdrawn: a new invite is needed.
    PhoneRevoked,
    /// The key list.
    Keys,
}

/// The top screen and the sync status line.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HomeGuide {
    pub stage: Stage,
    /// One sentence about the stage, to show as it is.
    pub message: String,
    /// The "clock wrong" screen's text, when the phone clock is off.
    pub clock_warning: Option<String>,
    pub last_sync_at: Option<SystemTime>,
    /// Usage events not yet uploaded.
    pub usage_events_waiting: u32,
    pub key_count: u32,
    pub usable_key_count: u32,
}

/// What the operator does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyAction {
    Unlock,
    RollingPin,
    StaticPin,
    Card,
}

/// What stops the operator now; each is one screen or banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Blocker {
    PhoneRevoked,
    KeyUpcoming,
    KeyExpired,
    KeyRevoked,
    PinNotSynced,
    NoMachine,
    BluetoothOff,
    BluetoothPermissionMissing,
    BluetoothUnsupported,
    MachineNotInRange,
}

/// What a key is for and whether it can be used now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeyGuide {
    pub key_id: String,
    pub action: KeyAction,
    /// Null: the action can be done now.
    pub blocker: Option<Blocker>,
    /// The blocker's message, or how to do the action.
    pub message: String,
    /// Rolling PIN keys: the phone clock is off by more than one step of the key's
    /// period (the PIN shown is still right).
    pub clock_warning: Option<String>,
}

/// What a failed unlock or lock asks of the operator.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UnlockErrorGuide {
    /// The screen to show; null: show the message.
    pub blocker: Option<Blocker>,
    /// Trying again (after the blocker is dealt with) may work.
    pub retry: bool,
    pub message: String,
}

/// What the app shows for an [`UnlockError`]: its screen, whether to offer a retry, and
/// the core's sentence.
#[uniffi::export]
pub fn unlock_error_guide(error: UnlockError) -> UnlockErrorGuide {
    let message = error.to_string();
    opkey_core::UnlockErrorGuide::new(problem(&error), message).into()
}

/// The sentence for a machine's refusal: why, then what to do.
#[uniffi::export]
pub fn deny_reason_message(reason: DenyReason) -> String {
    opkey_core::DenyReason::from(reason).message()
}

/// The kind of a bindings [`UnlockError`], as the core names it.
fn problem(e: &UnlockError) -> opkey_core::UnlockProblem {
    use opkey_core::UnlockProblem as P;
    match e {
        UnlockError::NotEnrolled { .. } => P::NotEnrolled,
        UnlockError::PhoneRevoked { .. } => P::PhoneRevoked,
        UnlockError::NotInScope { .. } => P::NotInScope,
        UnlockError::NotADigitalKey { .. } => P::NotADigitalKey,
        UnlockError::NoUsableKey { state, .. } => P::NoUsableKey((*state).into()),
        UnlockError::GrantExpired { .. } => P::GrantExpired,
        UnlockError::MachineKeyUnknown { .. } => P::MachineKeyUnknown,
        UnlockError::NotInRange { .. } => P::NotInRange,
        UnlockError::BluetoothOff { .. } => P::BluetoothOff,
        UnlockError::PermissionMissing { .. } => P::PermissionMissing,
        UnlockError::TimedOut { .. } => P::TimedOut,
        UnlockError::Disconnected { .. } => P::Disconnected,
        UnlockError::Bluetooth { .. } => P::Bluetooth,
        UnlockError::FakeMachine { .. } => P::FakeMachine,
        UnlockError::WrongMachine { .. } => P::WrongMachine,
        UnlockError::BadAnswer { .. } => P::BadAnswer,
        UnlockError::Cancelled { .. } => P::Cancelled,
        UnlockError::Signer { .. } => P::SignerFailed,
        UnlockError::PhoneKeyLost { .. } => P::PhoneKeyLost,
        UnlockError::Storage { .. } => P::Storage,
        UnlockError::Internal { .. } => P::Internal,
    }
}

impl From<BluetoothState> for opkey_core::BluetoothState {
    fn from(b: BluetoothState) -> Self {
        match b {
            BluetoothState::Ready => Self::Ready,
            BluetoothState::Off => Self::Off,
            BluetoothState::PermissionMissing => Self::PermissionMissing,
            BluetoothState::Unsupported => Self::Unsupported,
        }
    }
}

impl From<opkey_core::Stage> for Stage {
    fn from(s: opkey_core::Stage) -> Self {
        match s {
            opkey_core::Stage::Welcome => Stage::Welcome,
            opkey_core::Stage::ResumeInvite => Stage::ResumeInvite,
            opkey_core::Stage::PhoneRevoked => Stage::PhoneRevoked,
            opkey_core::Stage::Keys => Stage::Keys,
        }
    }
}

impl From<opkey_core::HomeGuide> for HomeGuide {
    fn from(g: opkey_core::HomeGuide) -> Self {
        HomeGuide {
            stage: g.stage.into(),
            message: g.message,
            clock_warning: g.clock_warning,
            last_sync_at: g.last_sync_at.map(Into::into),
            usage_events_waiting: g.usage_events_waiting,
            key_count: g.key_count,
            usable_key_count: g.usable_key_count,
        }
    }
}

impl From<opkey_core::KeyAction> for KeyAction {
    fn from(a: opkey_core::KeyAction) -> Self {
        match a {
            opkey_core::KeyAction::Unlock => KeyAction::Unlock,
            opkey_core::KeyAction::RollingPin => KeyAction::RollingPin,
            opkey_core::KeyAction::StaticPin => KeyAction::StaticPin,
            opkey_core::KeyAction::Card => KeyAction::Card,
        }
    }
}

impl From<opkey_core::Blocker> for Blocker {
    fn from(b: opkey_core::Blocker) -> Self {
        use opkey_core::Blocker as B;
        match b {
            B::PhoneRevoked => Blocker::PhoneRevoked,
            B::KeyUpcoming => Blocker::KeyUpcoming,
            B::KeyExpired => Blocker::KeyExpired,
            B::KeyRevoked => Blocker::KeyRevoked,
            B::PinNotSynced => Blocker::PinNotSynced,
            B::NoMachine => Blocker::NoMachine,
            B::BluetoothOff => Blocker::BluetoothOff,
            B::BluetoothPermissionMissing => Blocker::BluetoothPermissionMissing,
            B::BluetoothUnsupported => Blocker::BluetoothUnsupported,
            B::MachineNotInRange => Blocker::MachineNotInRange,
        }
    }
}

impl From<opkey_core::KeyGuide> for KeyGuide {
    fn from(g: opkey_core::KeyGuide) -> Self {
        KeyGuide {
            key_id: g.key_id,
            action: g.action.into(),
            blocker: g.blocker.map(Into::into),
            message: g.message,
            clock_warning: g.clock_warning,
        }
    }
}

impl From<opkey_core::UnlockErrorGuide> for UnlockErrorGuide {
    fn from(g: opkey_core::UnlockErrorGuide) -> Self {
        UnlockErrorGuide {
            blocker: g.blocker.map(Into::into),
            retry: g.retry,
            message: g.message,
        }
    }
}

impl From<DenyReason> for opkey_core::DenyReason {
    fn from(r: DenyReason) -> Self {
        match r {
            DenyReason::Malformed => Self::Malformed,
            DenyReason::StaleChallenge => Self::StaleChallenge,
            DenyReason::BadCiphertext => Self::BadCiphertext,
            DenyReason::UnknownGrant => Self::UnknownGrant,
            DenyReason::BadGrantSignature => Self::BadGrantSignature,
            DenyReason::WrongMachine => Self::WrongMachine,
            DenyReason::NotYetValid => Self::NotYetValid,
            DenyReason::Expired => Self::Expired,
            DenyReason::Revoked => Self::Revoked,
            DenyReason::BadSignature => Self::BadSignature,
            DenyReason::Unsupported => Self::Unsupported,
            DenyReason::BadRevocationList => Self::BadRevocationList,
        }
    }
}

impl From<KeyState> for opkey_core::KeyState {
    fn from(s: KeyState) -> Self {
        match s {
            KeyState::Upcoming => Self::Upcoming,
            KeyState::Active => Self::Active,
            KeyState::Expired => Self::Expired,
            KeyState::Revoked => Self::Revoked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlock_exception_from_the_shell_gets_the_cores_guide_with_its_own_message() {
        let core = opkey_core::UnlockError::PermissionMissing;
        let thrown = UnlockError::from(core.clone());
        let guide = unlock_error_guide(thrown);
        assert_eq!(guide, opkey_core::UnlockErrorGuide::from(&core).into());
        assert_eq!(guide.blocker, Some(Blocker::BluetoothPermissionMissing));
        assert!(guide.retry);

        let core = opkey_core::UnlockError::NoUsableKey {
            machine_id: "m1".into(),
            key_id: "k1".into(),
            state: opkey_core::KeyState::Revoked,
        };
        let guide = unlock_error_guide(UnlockError::from(core.clone()));
        assert_eq!((guide.blocker, guide.retry), (Some(Blocker::KeyRevoked), false));
        assert_eq!(guide.message, core.to_string());

        let lost = opkey_core::UnlockError::Signer(opkey_core::SignerError::KeyUnavailable {
            reason: "lock screen removed".into(),
        });
        assert!(!unlock_error_guide(UnlockError::from(lost)).retry);
    }

    #[test]
    fn every_refusal_has_the_cores_sentence() {
        for reason in [
            DenyReason::Revoked,
            DenyReason::StaleChallenge,
            DenyReason::BadRevocationList,
        ] {
            let core = opkey_core::DenyReason::from(reason);
            assert_eq!(DenyReason::from(core), reason);
            assert_eq!(deny_reason_message(reason), core.message());
        }
    }
}
