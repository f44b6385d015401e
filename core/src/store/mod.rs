//! The offline store: one SQLite file (`opkey.db`) holding the enrollment, the keys,
//! machines and organizations last synced, the Digital Key grants and revocation lists,
//! the sync cursor and server-time offset, the outbox of usage events, and the *vault* of
//! sealed secrets.
//!
//! This module is the only place that talks to SQLite. Every change of more than one
//! row happens in one transaction, so a failure (including a full disk) leaves the file
//! as it was. Secrets (software signer key, pending invite secret, later PIN seeds) are
//! stored only as AES-256-GCM envelopes under the data key from the platform's
//! [`crate::SecretStore`]; nothing secret is written in plaintext or logged.

mod db;
mod digital_key;
mod outbox;
mod pins;
mod schema;

pub(crate) use db::{PhoneState, SLOT_INVITE, SLOT_SIGNER, Store};
#[cfg(test)]
pub(crate) use digital_key::AccessKey;
pub(crate) use digital_key::{CachedGrant, MachineAccess, StoredGrant};
pub(crate) use pins::PinKeyRecord;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// File name of the store inside [`crate::CoreConfig::data_dir`].
pub const DB_FILE_NAME: &str = "opkey.db";

/// Why the offline store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file is not a SQLite database, or it is damaged.
    #[error("this phone's key store is damaged and cannot be read; re-enroll with a new invite")]
    Corrupt,
    /// The file is another application's database.
    #[error("the data folder holds another application's database; choose another folder")]
    Foreign,
    #[error(
        "the key store was written by a newer version of OpKey (schema {found}, this version reads \
         up to {supported}); update the app"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("the phone's storage is full: free some space and try again (nothing was changed)")]
    DiskFull,
    /// The file or its folder could not be opened (permissions, missing volume).
    #[error("the key store could not be opened ({reason})")]
    Unavailable { reason: String },
    /// A protected value could not be opened although the data key matched.
    #[error("a protected value in the key store ({slot}) is damaged; re-enroll with a new invite")]
    SecretUnreadable { slot: String },
    #[error("the key store failed ({reason})")]
    Sqlite { reason: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(C::DiskFull) => StoreError::DiskFull,
            Some(C::NotADatabase | C::DatabaseCorrupt) => StoreError::Corrupt,
            Some(C::CannotOpen | C::PermissionDenied | C::ReadOnly) => StoreError::Unavailable {
                reason: e.to_string(),
            },
            _ => match e {
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt,
                other => StoreError::Sqlite {
                    reason: other.to_string(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests;
