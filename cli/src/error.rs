//! How the CLI fails: one error type, printed to stderr as what happened and what to do,
//! with an exit status a script can tell apart.

use opkey_core::{DenyReason, UnlockError};
use opkey_server::admin_client::AdminError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input on the command line or in a file the person named.
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Core(#[from] opkey_core::Error),
    #[error(transparent)]
    Invite(#[from] opkey_core::InviteError),
    /// An unlock or lock that got no answer from the machine, or was stopped on the phone.
    #[error(transparent)]
    Unlock(#[from] UnlockError),
    /// The machine answered and refused; its relay did not move.
    #[error("{machine} refused: {}", reason.describe())]
    Refused { machine: String, reason: DenyReason },
    /// `opkey pin`: the key cannot give a PIN (see the exit status).
    #[error(transparent)]
    Pin(#[from] opkey_core::PinError),
    /// `opkey demo --audit-secrets` found a secret in plaintext, or could not collect one.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("{0}")]
    Io(String),
}

impl CliError {
    pub fn usage(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        CliError::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// 2: the command was wrong; 3: the network or server; 4: the machine could not be
    /// reached (range, Bluetooth, a dropped link); 5: the machine refused; 6: not a PIN
    /// key; 7: the PIN is not synced to this installation; 8: the key is not usable now;
    /// 9: the secrets audit found a secret in plaintext; 1: anything else, including what
    /// the phone refuses before any radio traffic.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Usage { .. } | CliError::Invite(_) => 2,
            CliError::Admin(AdminError::Unreachable { .. }) => 3,
            CliError::Core(opkey_core::Error::Network { .. } | opkey_core::Error::Timeout) => 3,
            CliError::Unlock(e) if reaching_the_machine(e) => 4,
            CliError::Refused { .. } => 5,
            CliError::Pin(
                opkey_core::PinError::NotRollingPin { .. } | opkey_core::PinError::NotStaticPin { .. },
            ) => 6,
            CliError::Pin(opkey_core::PinError::NotSynced { .. }) => 7,
            CliError::Pin(opkey_core::PinError::NotUsable { .. }) => 8,
            CliError::Audit(crate::audit::AuditError::SecretsFound { .. }) => 9,
            _ => 1,
        }
    }

    pub fn report(&self) {
        eprintln!("error: {self}");
        if let Some(hint) = self.hint() {
            eprintln!("hint: {hint}");
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CliError::Usage { hint, .. } => hint.clone(),
            CliError::Admin(AdminError::Unreachable { .. }) => {
                Some("check --server and that `opkey-server serve` is running".into())
            }
            CliError::Admin(AdminError::Api { code, .. }) => {
                use opkey_protocol::api::ErrorCode::*;
                match code {
                    Unauthorized => Some("check --token: it must be an admin token of this server".into()),
                    Forbidden => Some("only Admin and Fleet Admin users may manage access".into()),
                    _ => None,
                }
            }
            CliError::Core(opkey_core::Error::ServerUnknown) => {
                Some("pass the backend with --server URL, e.g. `opkey invite CODE --server https://keys.example.com`".into())
            }
            CliError::Unlock(e) => unlock_hint(e),
            CliError::Pin(e) => pin_hint(e),
            CliError::Refused { reason, .. } => refusal_hint(*reason),
            _ => None,
        }
    }
}

/// The radio (or the socket standing in for it) failed: trying again may work.
fn reaching_the_machine(e: &UnlockError) -> bool {
    matches!(
        e,
        UnlockError::NotInRange { .. }
            | UnlockError::BluetoothOff
            | UnlockError::PermissionMissing
            | UnlockError::TimedOut
            | UnlockError::Disconnected
            | UnlockError::Bluetooth { .. }
            | UnlockError::WrongMachine { .. }
            | UnlockError::BadAnswer { .. }
    )
}

fn unlock_hint(e: &UnlockError) -> Option<String> {
    let hint = match e {
        UnlockError::NotEnrolled => "open your SMS invite with `opkey invite LINK_OR_CODE`",
        UnlockError::NotInScope { .. } => {
            "run `opkey sync`, then `opkey keys` to see the machines your keys open"
        }
        UnlockError::NotADigitalKey { .. } => {
            "`opkey keys` shows your access; PINs and cards are used at the machine"
        }
        UnlockError::GrantExpired { .. } => "run `opkey sync` to renew",
        UnlockError::MachineKeyUnknown { .. } => {
            "run `opkey sync`; if that does not help, the admin must register the machine's key \
             (`opkey admin machine edit ID --ble-public-key KEY`)"
        }
        UnlockError::NotInRange { .. } => {
            "is the machine on and within a few metres? With --via: is `opkey-machine run` listening at that address?"
        }
        UnlockError::BluetoothOff => "turn Bluetooth on, or reach a local machine with --via ADDR",
        UnlockError::PermissionMissing => "allow this program to use Bluetooth",
        UnlockError::TimedOut | UnlockError::Disconnected => "stay close to the machine and try again",
        _ => return None,
    };
    Some(hint.to_owned())
}

fn pin_hint(e: &opkey_core::PinError) -> Option<String> {
    use opkey_core::PinError as E;
    let hint = match e {
        E::KeyNotFound { .. } => "run `opkey sync`, then `opkey keys` to see your keys",
        E::NotRollingPin { .. } | E::NotStaticPin { .. } => {
            "`opkey keys` shows each key's type: only Rolling PIN and personal Static PIN keys have a PIN here"
        }
        E::NotSynced { .. } => "run `opkey sync` once while online; the PIN then works offline",
        E::NotUsable { .. } => "run `opkey sync`; if the key is still not usable, ask your fleet admin",
        E::Store(_) => return None,
    };
    Some(hint.to_owned())
}

fn refusal_hint(reason: DenyReason) -> Option<String> {
    let hint = match reason {
        DenyReason::Revoked => "run `opkey sync`; if the key is gone or revoked, ask your fleet admin",
        DenyReason::Expired => "run `opkey sync` to renew",
        DenyReason::NotYetValid => "wait until the key starts, or check the machine's clock",
        DenyReason::StaleChallenge | DenyReason::Malformed | DenyReason::BadCiphertext => "try again",
        DenyReason::Unsupported => "update this app or the machine's firmware",
        _ => "run `opkey sync` and try again; if it persists, report it to your fleet admin",
    };
    Some(hint.to_owned())
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e.to_string())
    }
}
