//! The one public error of the core. Each variant is something the app can act on, and
//! its message tells the person what to do. No variant carries a secret: invite
//! secrets, tokens, keys and signatures never reach an error text.

use crate::invite::InviteError;
use crate::secrets::SecretStoreError;
use crate::signer::SignerError;
use crate::store::StoreError;
use opkey_protocol::api::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The link or code is not a valid invite (checked without the network).
    #[error(transparent)]
    InvalidInvite(#[from] InviteError),
    #[error("this invite does not exist: check the link or code, or ask your fleet admin for a new invite")]
    InviteNotFound,
    #[error("this invite has expired: ask your fleet admin to send a new one")]
    InviteExpired,
    #[error("this invite was already used on another phone: ask your fleet admin for a new invite")]
    InviteAlreadyUsed,
    #[error("this invite was withdrawn: ask your fleet admin for a new one")]
    InviteRevoked,
    #[error("too many attempts: wait a few minutes and try again")]
    TooManyAttempts,
    #[error(
        "a short code needs to know the server: open the invite link from your SMS instead, \
         or set the server address first"
    )]
    ServerUnknown,
    #[error("this phone is not enrolled yet: open the invite link from your SMS")]
    NotEnrolled,
    #[error(
        "this phone's access was withdrawn and its keys were removed from it: \
         ask your fleet admin for a new invite"
    )]
    PhoneRevoked,
    #[error("there is no key {id} on this phone: sync to refresh your keys")]
    KeyNotFound { id: String },
    /// The server could not be reached, after retries.
    #[error("the server could not be reached ({reason}): check the connection; your keys still work offline")]
    Network { reason: String },
    #[error(
        "the server did not answer in time: check the connection and try again; \
         your keys still work offline"
    )]
    Timeout,
    /// The server answered with an error this core does not turn into a variant above.
    #[error(
        "the server answered with an error (HTTP {status}: {message}); try again later, or tell your fleet admin if it persists"
    )]
    Server {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
    },
    /// The server's answer was cut off or not what the API promises.
    #[error(
        "the server's answer was unreadable ({reason}): try again later; nothing was changed on this phone"
    )]
    BadResponse { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SecretStore(#[from] SecretStoreError),
    #[error("the key that protects this phone's data is missing or different; re-enroll with a new invite")]
    DataKeyMismatch,
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The app cancelled the operation (a [`crate::CancelToken`]) while it waited on the
    /// network; the store is as it was before.
    #[error("cancelled; nothing was changed")]
    Cancelled,
    /// Something that should not happen (no system randomness, a broken invariant).
    #[error("internal error ({reason}); please report it")]
    Internal { reason: String },
}

impl Error {
    /// True for errors where trying again later may succeed (network, timeout, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } | Error::Timeout | Error::BadResponse { .. } => true,
            Error::Server { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
