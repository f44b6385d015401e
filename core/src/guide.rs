//! What the apps tell the operator: the app's top screen ([`HomeGuide`]), what a key is
//! for and what stops it right now ([`KeyGuide`]), and what a failed unlock asks of the
//! operator ([`UnlockErrorGuide`]), each with one sentence to show as it is.
//!
//! The Android and iOS shells draw these and decide nothing themselves: which screen
//! comes first, when Bluetooth matters, when a PIN needs a sync, when the clock is worth
//! a warning, and which failures are worth another try are all decided here, once, and
//! tested here.

use crate::unlock::{DenyReason, UnlockError};
use crate::views::{self, KeyView, Status};
use crate::{Error, OpKey, SignerError};
use opkey_protocol::{AccessType, KeyState};
use time::OffsetDateTime;

/// What the shell knows about the phone's Bluetooth (the core cannot see it offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BluetoothState {
    Ready,
    Off,
    /// The app may not scan or connect (Android 12+ "Nearby devices", iOS Bluetooth).
    PermissionMissing,
    /// The phone has no Bluetooth Low Energy.
    Unsupported,
}

/// The app's top screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Not enrolled: open the invite link from the SMS or type its code.
    Welcome,
    /// A redeem was interrupted (network, app killed): finish it before anything else.
    ResumeInvite,
    /// The backend withdrew this phone's access: a new invite is needed.
    PhoneRevoked,
    /// Enrolled: the key list.
    Keys,
}

/// The app's top screen and the sync status line under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeGuide {
    pub stage: Stage,
    /// One sentence for the operator about this stage.
    pub message: String,
    /// Set when the phone clock is off by more than one step of the shortest Rolling PIN
    /// period on the phone (30 s without one): the "clock wrong" screen.
    pub clock_warning: Option<String>,
    pub last_sync_at: Option<OffsetDateTime>,
    /// Usage events recorded on the phone and not yet uploaded.
    pub usage_events_waiting: u32,
    pub key_count: u32,
    pub usable_key_count: u32,
}

/// What the operator does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// A Digital Key: unlock the machine over Bluetooth.
    Unlock,
    /// Type the Rolling PIN shown by the app on the machine's keypad.
    RollingPin,
    /// Type the personal Static PIN on the machine's keypad.
    StaticPin,
    /// Hold the card to the machine's reader; the app only shows the card's id.
    Card,
}

/// What stops the operator from using a key now; each is one screen or banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocker {
    PhoneRevoked,
    KeyUpcoming,
    KeyExpired,
    KeyRevoked,
    /// The PIN secret is not on the phone yet: one sync with signal brings it.
    PinNotSynced,
    /// A Digital Key that opens no machine.
    NoMachine,
    BluetoothOff,
    BluetoothPermissionMissing,
    BluetoothUnsupported,
    MachineNotInRange,
}

impl Blocker {
    /// What to tell the operator.
    pub fn message(self) -> &'static str {
        match self {
            Blocker::PhoneRevoked => {
                "This phone's access was withdrawn: ask your fleet admin for a new invite."
            }
            Blocker::KeyUpcoming => "This key is not valid yet: it works from its start time.",
            Blocker::KeyExpired => "This key has expired: ask your fleet admin to extend it.",
            Blocker::KeyRevoked => "This key was withdrawn by your fleet admin.",
            Blocker::PinNotSynced => {
                "The PIN for this key is not on this phone yet: sync once with signal, then it works offline."
            }
            Blocker::NoMachine => "This key opens no machine yet: sync, or ask your fleet admin.",
            Blocker::BluetoothOff => "Bluetooth is off: turn it on to unlock machines.",
            Blocker::BluetoothPermissionMissing => {
                "OpKey may not use Bluetooth: allow \"Nearby devices\" (Bluetooth) for OpKey in the phone's settings."
            }
            Blocker::BluetoothUnsupported => {
                "This phone has no Bluetooth Low Energy: use the machine's keypad or card instead."
            }
            Blocker::MachineNotInRange => "The machine is not in range: go closer and try again.",
        }
    }
}

/// What a key is for and whether it can be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGuide {
    pub key_id: String,
    pub action: KeyAction,
    /// `None`: the action can be done now.
    pub blocker: Option<Blocker>,
    /// The blocker's message, or how to do the action.
    pub message: String,
    /// For a Rolling PIN key: set when the phone clock is off by more than one step of
    /// its period (the PIN shown is still right: it uses the server's time).
    pub clock_warning: Option<String>,
}

/// What a failed unlock or lock asks of the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockErrorGuide {
    /// The screen to show (Bluetooth off, permission, out of range …); `None`: show the
    /// message.
    pub blocker: Option<Blocker>,
    /// Trying again as it is (or after the blocker is dealt with) may work.
    pub retry: bool,
    pub message: String,
}

impl OpKey {
    /// The app's top screen and sync status. Works offline.
    pub fn home_guide(&self) -> Result<HomeGuide, Error> {
        let status = self.status()?;
        let clock = self.clock_status()?;
        let waiting = match &status.operator {
            Some(operator) => self.store().pending_event_count(&operator.id)?,
            None => 0,
        };
        Ok(guide_home(&status, clock.warning, waiting))
    }

    /// What `key_id` is for and what stops it now, given what the shell knows about
    /// Bluetooth. Works offline.
    pub fn key_guide(&self, key_id: &str, bluetooth: BluetoothState) -> Result<KeyGuide, Error> {
        let key = self.key(key_id)?;
        let revoked = self.store().phone()?.revoked;
        let offset_ms = *self.offset();
        Ok(guide_key(&key, bluetooth, revoked, offset_ms))
    }
}

/// The decision behind [`OpKey::home_guide`], on plain data.
pub(crate) fn guide_home(
    status: &Status,
    clock_warning: Option<String>,
    usage_events_waiting: u32,
) -> HomeGuide {
    let (stage, message) = if status.pending_invite {
        (
            Stage::ResumeInvite,
            "Your invite is not finished yet: connect to the internet and continue.".to_owned(),
        )
    } else if status.revoked {
        (Stage::PhoneRevoked, Blocker::PhoneRevoked.message().to_owned())
    } else if !status.enrolled {
        (
            Stage::Welcome,
            "Open the invite link from your SMS, or type the code from it.".to_owned(),
        )
    } else {
        let message = match (status.key_count, status.usable_key_count) {
            (0, _) => "No keys yet: your fleet admin has not given you any. Sync to check again.".to_owned(),
            (n, u) if n == u => format!("{n} {} ready to use.", plural(n, "key", "keys")),
            (n, u) => format!("{u} of {n} keys ready to use."),
        };
        (Stage::Keys, message)
    };
    HomeGuide {
        stage,
        message,
        clock_warning,
        last_sync_at: status.last_sync_at,
        usage_events_waiting,
        key_count: status.key_count,
        usable_key_count: status.usable_key_count,
    }
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// The decision behind [`OpKey::key_guide`], on plain data.
pub(crate) fn guide_key(
    key: &KeyView,
    bluetooth: BluetoothState,
    phone_revoked: bool,
    offset_ms: Option<i64>,
) -> KeyGuide {
    let action = match key.access_type {
        AccessType::DigitalKey => KeyAction::Unlock,
        AccessType::RollingPin => KeyAction::RollingPin,
        AccessType::StaticPin => KeyAction::StaticPin,
        AccessType::PrimaryKeyCard | AccessType::KeyCard | AccessType::IpafCard => KeyAction::Card,
    };
    let state_blocker = match key.state {
        KeyState::Active => None,
        KeyState::Upcoming => Some(Blocker::KeyUpcoming),
        KeyState::Expired => Some(Blocker::KeyExpired),
        KeyState::Revoked => Some(Blocker::KeyRevoked),
    };
    let action_blocker = match action {
        KeyAction::Unlock if key.machines.is_empty() => Some(Blocker::NoMachine),
        KeyAction::Unlock => match bluetooth {
            BluetoothState::Ready => None,
            BluetoothState::Off => Some(Blocker::BluetoothOff),
            BluetoothState::PermissionMissing => Some(Blocker::BluetoothPermissionMissing),
            BluetoothState::Unsupported => Some(Blocker::BluetoothUnsupported),
        },
        KeyAction::RollingPin | KeyAction::StaticPin if !key.pin_synced => Some(Blocker::PinNotSynced),
        KeyAction::RollingPin | KeyAction::StaticPin | KeyAction::Card => None,
    };
    let blocker = phone_revoked
        .then_some(Blocker::PhoneRevoked)
        .or(state_blocker)
        .or(action_blocker);
    let message = match blocker {
        Some(b) => b.message().to_owned(),
        None => how_to(action, key),
    };
    let clock_warning = match (&key.rolling_pin, offset_ms) {
        (Some(pin), Some(offset)) => views::clock_warning_beyond(offset, i64::from(pin.period_s) * 1000),
        _ => None,
    };
    KeyGuide {
        key_id: key.id.clone(),
        action,
        blocker,
        message,
        clock_warning,
    }
}

fn how_to(action: KeyAction, key: &KeyView) -> String {
    match action {
        KeyAction::Unlock => {
            let machines = key.machines.len();
            if machines == 1 {
                "Stand next to the machine and tap Unlock.".to_owned()
            } else {
                format!("Stand next to one of its {machines} machines and tap Unlock on it.")
            }
        }
        KeyAction::RollingPin => {
            "Type this PIN on the machine's keypad before the countdown ends; a new one follows.".to_owned()
        }
        KeyAction::StaticPin => "Type your personal PIN on the machine's keypad.".to_owned(),
        KeyAction::Card => match &key.card_id {
            Some(card) => format!("Hold card {card} to the machine's card reader."),
            None => "Hold your card to the machine's card reader.".to_owned(),
        },
    }
}

/// An [`UnlockError`] without its details: what the shells' exceptions can be turned
/// back into (their fields are strings) to ask for an [`UnlockErrorGuide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnlockProblem {
    NotEnrolled,
    PhoneRevoked,
    NotInScope,
    NotADigitalKey,
    NoUsableKey(KeyState),
    GrantExpired,
    MachineKeyUnknown,
    NotInRange,
    BluetoothOff,
    PermissionMissing,
    TimedOut,
    Disconnected,
    Bluetooth,
    FakeMachine,
    WrongMachine,
    BadAnswer,
    Cancelled,
    /// The signer failed for a passing reason (a locked keystore).
    SignerFailed,
    /// The phone's key is gone (lock screen removed): a new enrollment is needed.
    PhoneKeyLost,
    Storage,
    Internal,
}

impl UnlockError {
    pub fn problem(&self) -> UnlockProblem {
        match self {
            UnlockError::NotEnrolled => UnlockProblem::NotEnrolled,
            UnlockError::PhoneRevoked => UnlockProblem::PhoneRevoked,
            UnlockError::NotInScope { .. } => UnlockProblem::NotInScope,
            UnlockError::NotADigitalKey { .. } => UnlockProblem::NotADigitalKey,
            UnlockError::NoUsableKey { state, .. } => UnlockProblem::NoUsableKey(*state),
            UnlockError::GrantExpired { .. } => UnlockProblem::GrantExpired,
            UnlockError::MachineKeyUnknown { .. } => UnlockProblem::MachineKeyUnknown,
            UnlockError::NotInRange { .. } => UnlockProblem::NotInRange,
            UnlockError::BluetoothOff => UnlockProblem::BluetoothOff,
            UnlockError::PermissionMissing => UnlockProblem::PermissionMissing,
            UnlockError::TimedOut => UnlockProblem::TimedOut,
            UnlockError::Disconnected => UnlockProblem::Disconnected,
            UnlockError::Bluetooth { .. } => UnlockProblem::Bluetooth,
            UnlockError::FakeMachine { .. } => UnlockProblem::FakeMachine,
            UnlockError::WrongMachine { .. } => UnlockProblem::WrongMachine,
            UnlockError::BadAnswer { .. } => UnlockProblem::BadAnswer,
            UnlockError::Cancelled => UnlockProblem::Cancelled,
            UnlockError::Signer(SignerError::KeyUnavailable { .. }) => UnlockProblem::PhoneKeyLost,
            UnlockError::Signer(_) => UnlockProblem::SignerFailed,
            UnlockError::Store(_) => UnlockProblem::Storage,
            UnlockError::Internal { .. } => UnlockProblem::Internal,
        }
    }
}

impl UnlockErrorGuide {
    /// The guide for a failure of kind `problem`, whose sentence is `message` (the
    /// error's own text).
    pub fn new(problem: UnlockProblem, message: String) -> Self {
        use UnlockProblem as P;
        let (blocker, retry) = match problem {
            P::PhoneRevoked => (Some(Blocker::PhoneRevoked), false),
            P::NoUsableKey(KeyState::Upcoming) => (Some(Blocker::KeyUpcoming), false),
            P::NoUsableKey(KeyState::Expired) => (Some(Blocker::KeyExpired), false),
            P::NoUsableKey(KeyState::Revoked) => (Some(Blocker::KeyRevoked), false),
            P::NoUsableKey(KeyState::Active) => (None, false),
            P::NotInRange => (Some(Blocker::MachineNotInRange), true),
            P::BluetoothOff => (Some(Blocker::BluetoothOff), true),
            P::PermissionMissing => (Some(Blocker::BluetoothPermissionMissing), true),
            P::TimedOut | P::Disconnected | P::Bluetooth | P::WrongMachine | P::BadAnswer | P::Cancelled => {
                (None, true)
            }
            P::SignerFailed => (None, true),
            P::NotEnrolled
            | P::NotInScope
            | P::NotADigitalKey
            | P::GrantExpired
            | P::MachineKeyUnknown
            | P::FakeMachine
            | P::PhoneKeyLost
            | P::Storage
            | P::Internal => (None, false),
        };
        UnlockErrorGuide {
            blocker,
            retry,
            message,
        }
    }
}

impl From<&UnlockError> for UnlockErrorGuide {
    fn from(e: &UnlockError) -> Self {
        UnlockErrorGuide::new(e.problem(), e.to_string())
    }
}

impl DenyReason {
    /// Why the machine refused, for the operator.
    pub fn describe(self) -> &'static str {
        match self {
            DenyReason::Revoked => "your key was revoked or changed since this phone last synced",
            DenyReason::Expired => "your credential has expired by the machine's clock",
            DenyReason::NotYetValid => "your credential is not valid yet by the machine's clock",
            DenyReason::WrongMachine => "your credential does not name this machine",
            DenyReason::StaleChallenge => "the challenge expired before the request arrived",
            DenyReason::UnknownGrant => "it does not hold your credential, even after it was sent in full",
            DenyReason::BadSignature | DenyReason::BadGrantSignature => "a signature did not verify",
            DenyReason::BadRevocationList => "the revocation list this phone carried did not verify",
            DenyReason::Malformed | DenyReason::BadCiphertext | DenyReason::Unsupported => {
                "it could not read the request"
            }
        }
    }

    /// What the app shows for a refusal: why, then what to do.
    pub fn message(self) -> String {
        let what_to_do = match self {
            DenyReason::Revoked => "Sync; if the key is still refused, ask your fleet admin.",
            DenyReason::Expired => "Sync to renew it, then try again.",
            DenyReason::NotYetValid => {
                "Wait until the key starts, or ask your fleet admin to check the machine's clock."
            }
            DenyReason::StaleChallenge | DenyReason::Malformed | DenyReason::BadCiphertext => "Try again.",
            DenyReason::Unsupported => "Update OpKey, or ask your fleet admin to update the machine.",
            DenyReason::UnknownGrant
            | DenyReason::WrongMachine
            | DenyReason::BadSignature
            | DenyReason::BadGrantSignature
            | DenyReason::BadRevocationList => {
                "Sync and try again; if it happens again, tell your fleet admin."
            }
        };
        format!("The machine refused: {}. {what_to_do}", self.describe())
    }
}

#[cfg(test)]
mod tests;
