//! How the CLI fails: one error type, printed to stderr as what happened and what to do,
//! with an exit status a script can tell apart.

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

    /// 2: the command was wrong; 3: the network or server; 1: anything else.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Usage { .. } | CliError::Invite(_) => 2,
            CliError::Admin(AdminError::Unreachable { .. }) => 3,
            CliError::Core(opkey_core::Error::Network { .. } | opkey_core::Error::Timeout) => 3,
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
            _ => None,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e.to_string())
    }
}
