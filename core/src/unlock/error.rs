//! [`UnlockError`]: why an unlock or lock did not get an answer from the machine. A
//! machine's refusal is not an error but an outcome ([`super::UnlockOutcome::Denied`]).
//!
//! The first group is decided on the phone before any radio traffic, so the operator
//! learns at once; the second comes from the radio or from the machine's messages. Each
//! message tells the person what to do; none carries a secret.

use super::transport::TransportError;
use crate::error::Error;
use crate::signer::SignerError;
use crate::store::StoreError;
use opkey_protocol::KeyState;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    #[error("this phone is not enrolled yet: open the invite link from your SMS")]
    NotEnrolled,
    #[error("this phone's access was withdrawn: ask your fleet admin for a new invite")]
    PhoneRevoked,
    /// No key on the phone names this machine.
    #[error("none of your keys opens this machine ({machine_id}): sync, or ask your fleet admin")]
    NotInScope { machine_id: String },
    /// Keys name the machine, but none is a Digital Key (PINs and cards only).
    #[error("your access to this machine ({machine_id}) is not a Digital Key: use its keypad or card")]
    NotADigitalKey { machine_id: String },
    /// The Digital Key for this machine is not active now (server-corrected time).
    #[error("your Digital Key {key_id} is {}: ask your fleet admin", describe(*.state))]
    NoUsableKey {
        machine_id: String,
        key_id: String,
        state: KeyState,
    },
    /// The key is active but the phone holds no credential (grant) valid now.
    #[error("the credential of your Digital Key {key_id} has expired: sync to renew it")]
    GrantExpired { machine_id: String, key_id: String },
    /// The backend has not told this phone the machine's public key.
    #[error("this phone does not know machine {machine_id}'s key yet: sync, or ask your fleet admin")]
    MachineKeyUnknown { machine_id: String },

    #[error("the machine is not in range: go closer and try again")]
    NotInRange { machine_id: String },
    #[error("Bluetooth is off: turn it on and try again")]
    BluetoothOff,
    #[error("OpKey may not use Bluetooth: allow it in the phone's settings")]
    PermissionMissing,
    #[error("the machine did not answer in time: try again")]
    TimedOut,
    #[error("the connection to the machine was lost: try again")]
    Disconnected,
    #[error("Bluetooth failed ({reason}): try again")]
    Bluetooth { reason: String },
    /// The machine did not prove it is the machine chosen: its Hello is not signed by the
    /// key this phone synced for it. The phone sent nothing.
    #[error("this is not the machine it claims to be; nothing was sent: report it to your fleet admin")]
    FakeMachine { machine_id: String },
    /// Another machine answered than the one chosen.
    #[error("another machine answered: try again")]
    WrongMachine { machine_id: String },
    /// The machine's messages did not follow the protocol.
    #[error("the machine's answer could not be read ({reason}): try again")]
    BadAnswer { reason: String },
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error ({reason}); please report it")]
    Internal { reason: String },
}

impl UnlockError {
    /// A stable kebab-case name, used as the outcome of the usage event.
    pub fn code(&self) -> &'static str {
        match self {
            UnlockError::NotEnrolled => "not-enrolled",
            UnlockError::PhoneRevoked => "phone-revoked",
            UnlockError::NotInScope { .. } => "not-in-scope",
            UnlockError::NotADigitalKey { .. } => "not-a-digital-key",
            UnlockError::NoUsableKey { .. } => "no-usable-key",
            UnlockError::GrantExpired { .. } => "grant-expired",
            UnlockError::MachineKeyUnknown { .. } => "machine-key-unknown",
            UnlockError::NotInRange { .. } => "not-in-range",
            UnlockError::BluetoothOff => "bluetooth-off",
            UnlockError::PermissionMissing => "permission-missing",
            UnlockError::TimedOut => "timed-out",
            UnlockError::Disconnected => "disconnected",
            UnlockError::Bluetooth { .. } => "bluetooth-error",
            UnlockError::FakeMachine { .. } => "fake-machine",
            UnlockError::WrongMachine { .. } => "wrong-machine",
            UnlockError::BadAnswer { .. } => "bad-answer",
            UnlockError::Cancelled => "cancelled",
            UnlockError::Signer(_) => "signer-error",
            UnlockError::Store(_) => "store-error",
            UnlockError::Internal { .. } => "internal-error",
        }
    }

    /// Decided on the phone before any radio traffic.
    pub fn is_before_radio(&self) -> bool {
        matches!(
            self,
            UnlockError::NotEnrolled
                | UnlockError::PhoneRevoked
                | UnlockError::NotInScope { .. }
                | UnlockError::NotADigitalKey { .. }
                | UnlockError::NoUsableKey { .. }
                | UnlockError::GrantExpired { .. }
                | UnlockError::MachineKeyUnknown { .. }
        )
    }

    pub(crate) fn from_transport(e: TransportError, machine_id: &str) -> Self {
        match e {
            TransportError::BluetoothOff => UnlockError::BluetoothOff,
            TransportError::PermissionMissing => UnlockError::PermissionMissing,
            TransportError::NotFound => UnlockError::NotInRange {
                machine_id: machine_id.to_owned(),
            },
            TransportError::Timeout => UnlockError::TimedOut,
            TransportError::Disconnected => UnlockError::Disconnected,
            TransportError::Gatt { status } => UnlockError::Bluetooth {
                reason: format!("GATT error {status}"),
            },
            TransportError::Other { reason } => UnlockError::Bluetooth { reason },
        }
    }
}

fn describe(state: KeyState) -> &'static str {
    match state {
        KeyState::Upcoming => "not valid yet",
        KeyState::Active => "active",
        KeyState::Expired => "expired",
        KeyState::Revoked => "revoked",
    }
}

impl From<Error> for UnlockError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotEnrolled => UnlockError::NotEnrolled,
            Error::PhoneRevoked => UnlockError::PhoneRevoked,
            Error::Store(e) => UnlockError::Store(e),
            Error::Signer(e) => UnlockError::Signer(e),
            Error::Cancelled => UnlockError::Cancelled,
            other => UnlockError::Internal {
                reason: other.to_string(),
            },
        }
    }
}
