//! Secrets at rest.
//!
//! - [`SecretStore`]: where the platform keeps the one *data key* (Android Keystore,
//!   iOS Keychain; [`FileSecretStore`] for the CLI, [`MemorySecretStore`] for tests).
//! - `envelope`: AES-256-GCM sealing under that data key of every secret the core
//!   keeps in its database (software signer key, pending invite secret, later PIN seeds).
//!
//! This module never logs a secret, and its `Debug` impls never show one.

pub(crate) mod envelope;
mod file;
mod memory;

pub use file::FileSecretStore;
pub use memory::MemorySecretStore;

/// The name under which the data key lives in the [`SecretStore`].
pub const DATA_KEY_NAME: &str = "opkey.data-key";

/// A small key-value store for secrets that the platform protects.
///
/// Names are short ASCII identifiers (letters, digits, `.`, `-`, `_`).
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The value saved under `name`, or `None` if there is none.
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError>;
    /// Saves `value` under `name`, replacing any previous value.
    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError>;
    /// Forgets `name`; deleting a missing name is not an error.
    fn delete(&self, name: &str) -> Result<(), SecretStoreError>;
}

/// Why the platform's secret store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretStoreError {
    /// The store could not be read or written (locked device, I/O error, permissions).
    #[error("the phone's secure storage is unavailable ({reason}); unlock the phone and try again")]
    Unavailable { reason: String },
    /// The platform can no longer open what it holds under this name (its Keystore key
    /// was invalidated, the entry was altered): as good as gone. For the data key the
    /// core reports [`crate::Error::DataKeyMismatch`] when a store exists.
    #[error("the phone's secure storage can no longer open this entry ({reason})")]
    Invalidated { reason: String },
    /// A name the store cannot hold (a programming error, never user input).
    #[error("'{name}' is not a valid secret name")]
    InvalidName { name: String },
}

/// Accepts names that are safe as file names on every platform.
pub(crate) fn check_name(name: &str) -> Result<(), SecretStoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(SecretStoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}
