//! The errors that cross the boundary: [`OpKeyError`], thrown by every fallible export,
//! and [`PlatformError`], thrown by the shells' implementations of the foreign traits.
//!
//! Each `reason` is the core's message, written for the person using the app; no
//! variant carries a secret. A foreign exception the shell did not declare arrives as
//! [`PlatformError::Unexpected`] instead of a panic.

use opkey_core::{Error, InviteError, SecretStoreError, SignerError};

/// Why an OpKey call failed. The variant says what the app can do; `reason` says it to
/// the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum OpKeyError {
    /// The link or code is not a valid invite (checked without the network).
    #[error("{reason}")]
    InvalidInvite { kind: InviteProblem, reason: String },
    #[error("{reason}")]
    InviteNotFound { reason: String },
    #[error("{reason}")]
    InviteExpired { reason: String },
    #[error("{reason}")]
    InviteAlreadyUsed { reason: String },
    #[error("{reason}")]
    InviteRevoked { reason: String },
    /// Wait a few minutes before trying again.
    #[error("{reason}")]
    TooManyAttempts { reason: String },
    /// A short code needs the server address (set `server_url` or open the link).
    #[error("{reason}")]
    ServerUnknown { reason: String },
    #[error("{reason}")]
    NotEnrolled { reason: String },
    /// The backend withdrew this phone: its keys were removed; a new invite is needed.
    #[error("{reason}")]
    PhoneRevoked { reason: String },
    #[error("{reason}")]
    KeyNotFound { id: String, reason: String },
    /// The server could not be reached, after retries. Keys still work offline.
    #[error("{reason}")]
    Network { reason: String },
    #[error("{reason}")]
    Timeout { reason: String },
    /// The server answered with an error the core has no variant for.
    #[error("{reason}")]
    Server { status: u16, reason: String },
    /// The server's answer was cut off or not what the API promises.
    #[error("{reason}")]
    BadResponse { reason: String },
    /// The on-phone database failed (damaged, full disk, written by a newer app).
    #[error("{reason}")]
    Storage { reason: String },
    /// The data key is missing or different: erase local data and re-enroll.
    #[error("{reason}")]
    DataKeyMismatch { reason: String },
    /// The platform's secret store (Keystore / Keychain) failed.
    #[error("{reason}")]
    SecretStore { reason: String },
    /// The phone key could not sign; trying again may work.
    #[error("{reason}")]
    Signer { reason: String },
    /// The phone key is gone or was invalidated: re-enroll with a new invite.
    #[error("{reason}")]
    PhoneKeyLost { reason: String },
    /// The call was cancelled through its [`crate::CancelHandle`] (or the caller stopped
    /// waiting). Nothing half-done was kept.
    #[error("{reason}")]
    Cancelled { reason: String },
    /// The app passed settings the core cannot use (a programming error).
    #[error("{reason}")]
    InvalidConfig { reason: String },
    /// Something that should not happen; the reason is for a bug report.
    #[error("{reason}")]
    Internal { reason: String },
}

/// What is wrong with an invite that was refused without asking the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InviteProblem {
    Empty,
    WrongScheme,
    ForeignHost,
    LoopbackNotAllowed,
    MalformedLink,
    MalformedToken,
    ShortCodeLength,
    ShortCodeCharacter,
    BadCheckCharacter,
}

impl From<InviteError> for OpKeyError {
    fn from(e: InviteError) -> Self {
        let kind = match &e {
            InviteError::Empty => InviteProblem::Empty,
            InviteError::WrongScheme { .. } => InviteProblem::WrongScheme,
            InviteError::ForeignHost { .. } => InviteProblem::ForeignHost,
            InviteError::LoopbackNotAllowed { .. } => InviteProblem::LoopbackNotAllowed,
            InviteError::MalformedLink => InviteProblem::MalformedLink,
            InviteError::MalformedToken => InviteProblem::MalformedToken,
            InviteError::ShortCodeLength { .. } => InviteProblem::ShortCodeLength,
            InviteError::ShortCodeCharacter(_) => InviteProblem::ShortCodeCharacter,
            InviteError::BadCheckCharacter => InviteProblem::BadCheckCharacter,
        };
        OpKeyError::InvalidInvite {
            kind,
            reason: e.to_string(),
        }
    }
}

impl From<Error> for OpKeyError {
    fn from(e: Error) -> Self {
        let reason = e.to_string();
        match e {
            Error::InvalidInvite(invite) => invite.into(),
            Error::InviteNotFound => OpKeyError::InviteNotFound { reason },
            Error::InviteExpired => OpKeyError::InviteExpired { reason },
            Error::InviteAlreadyUsed => OpKeyError::InviteAlreadyUsed { reason },
            Error::InviteRevoked => OpKeyError::InviteRevoked { reason },
            Error::TooManyAttempts => OpKeyError::TooManyAttempts { reason },
            Error::ServerUnknown => OpKeyError::ServerUnknown { reason },
            Error::NotEnrolled => OpKeyError::NotEnrolled { reason },
            Error::PhoneRevoked => OpKeyError::PhoneRevoked { reason },
            Error::KeyNotFound { id } => OpKeyError::KeyNotFound { id, reason },
            Error::Network { .. } => OpKeyError::Network { reason },
            Error::Timeout => OpKeyError::Timeout { reason },
            Error::Server { status, .. } => OpKeyError::Server { status, reason },
            Error::BadResponse { .. } => OpKeyError::BadResponse { reason },
            Error::Store(_) => OpKeyError::Storage { reason },
            Error::SecretStore(_) => OpKeyError::SecretStore { reason },
            Error::DataKeyMismatch => OpKeyError::DataKeyMismatch { reason },
            Error::Signer(SignerError::KeyUnavailable { .. }) => OpKeyError::PhoneKeyLost { reason },
            Error::Signer(_) => OpKeyError::Signer { reason },
            Error::Cancelled => OpKeyError::Cancelled { reason },
            Error::Internal { .. } => OpKeyError::Internal { reason },
        }
    }
}

/// What a shell's [`crate::SecretStore`], [`crate::Signer`], [`crate::Logger`] or
/// listener throws.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PlatformError {
    /// Not usable right now (device locked, storage error, key store busy).
    #[error("{reason}")]
    Unavailable { reason: String },
    /// The key is gone or was invalidated (e.g. the lock screen was removed).
    #[error("{reason}")]
    KeyInvalidated { reason: String },
    /// The person declined (e.g. cancelled a biometric prompt).
    #[error("{reason}")]
    Refused { reason: String },
    /// An exception the shell did not declare; UniFFI reports it here rather than
    /// panicking.
    #[error("{reason}")]
    Unexpected { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // Kotlin sends the whole stack trace; its first line names the exception and its
        // message, which is what a person or a bug report needs.
        let reason = e.reason.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        PlatformError::Unexpected {
            reason: reason.trim().to_owned(),
        }
    }
}

impl From<PlatformError> for SecretStoreError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::KeyInvalidated { reason } => SecretStoreError::Invalidated { reason },
            PlatformError::Unavailable { .. }
            | PlatformError::Refused { .. }
            | PlatformError::Unexpected { .. } => SecretStoreError::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}

impl From<PlatformError> for SignerError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::KeyInvalidated { reason } => SignerError::KeyUnavailable { reason },
            PlatformError::Unavailable { reason }
            | PlatformError::Refused { reason }
            | PlatformError::Unexpected { reason } => SignerError::SigningFailed { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkey_core::StoreError;

    #[test]
    fn each_core_error_keeps_its_message_as_the_reason() {
        let e: OpKeyError = Error::Network {
            reason: "connection refused".into(),
        }
        .into();
        let OpKeyError::Network { reason } = &e else {
            panic!("{e:?}")
        };
        assert!(
            reason.contains("connection refused") && reason.contains("offline"),
            "{reason}"
        );

        let e: OpKeyError = Error::InvalidInvite(InviteError::ForeignHost {
            host: "evil.example".into(),
        })
        .into();
        assert!(matches!(
            e,
            OpKeyError::InvalidInvite { kind: InviteProblem::ForeignHost, ref reason } if reason.contains("evil.example")
        ));
        assert!(matches!(
            Error::Store(StoreError::DiskFull).into(),
            OpKeyError::Storage { .. }
        ));
        assert!(matches!(Error::Cancelled.into(), OpKeyError::Cancelled { .. }));
    }

    #[test]
    fn a_lost_phone_key_asks_to_re_enroll_while_a_refused_signature_may_be_retried() {
        let lost = SignerError::from(PlatformError::KeyInvalidated {
            reason: "lock screen removed".into(),
        });
        assert!(matches!(
            Error::Signer(lost).into(),
            OpKeyError::PhoneKeyLost { .. }
        ));
        let refused = SignerError::from(PlatformError::Refused {
            reason: "prompt cancelled".into(),
        });
        assert!(matches!(Error::Signer(refused).into(), OpKeyError::Signer { .. }));
    }

    #[test]
    fn an_undeclared_foreign_exception_is_reported_by_its_first_line() {
        let e = PlatformError::from(uniffi::UnexpectedUniFFICallbackError::new(
            "java.lang.IllegalStateException: keystore is locked\n\tat Test.load(Test.kt:3)\n",
        ));
        assert_eq!(
            e,
            PlatformError::Unexpected {
                reason: "java.lang.IllegalStateException: keystore is locked".into()
            }
        );
        let store = SecretStoreError::from(e);
        assert!(store.to_string().contains("keystore is locked"));
    }
}
