//! What the shells lend the core: the [`SecretStore`] that keeps the data key
//! (Android Keystore, iOS Keychain) and the phone's P-256 [`Signer`] (Keystore /
//! StrongBox, Secure Enclave). The adapters turn a [`PlatformError`] into the core's
//! typed errors, so a failing or throwing implementation never panics.
//!
//! Calls arrive on any Rust thread (the bindings' runtime workers, the caller's thread).
//! The core never sees a hardware signer's private key: it only asks for signatures.

use crate::error::PlatformError;
use opkey_core::{SecretStoreError, SignerError};
use std::fmt;
use std::sync::Arc;

/// A small key-value store for secrets the platform protects. The core keeps one entry
/// (its data key, 32 bytes, name `opkey.data-key`). Names are short ASCII identifiers.
#[uniffi::export(foreign)]
pub trait SecretStore: Send + Sync {
    /// The value saved under `name`, or null if there is none.
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, PlatformError>;
    /// Saves `value` under `name`, replacing any previous value.
    fn save(&self, name: String, value: Vec<u8>) -> Result<(), PlatformError>;
    /// Forgets `name`; deleting a missing name is not an error.
    fn delete(&self, name: String) -> Result<(), PlatformError>;
}

/// The phone's P-256 key.
#[uniffi::export(foreign)]
pub trait Signer: Send + Sync {
    /// The public key, SEC1 uncompressed: 65 bytes, `0x04 ‖ X ‖ Y`.
    fn public_key(&self) -> Result<Vec<u8>, PlatformError>;
    /// ECDSA P-256 with SHA-256 over `message`, ASN.1 DER (what Android's
    /// `SHA256withECDSA` and iOS's `ecdsaSignatureMessageX962SHA256` return).
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PlatformError>;
}

/// A shell's [`SecretStore`] as the core's.
pub(crate) struct ForeignSecretStore(pub(crate) Arc<dyn SecretStore>);

impl fmt::Debug for ForeignSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignSecretStore")
    }
}

impl opkey_core::SecretStore for ForeignSecretStore {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        Ok(self.0.load(name.to_owned())?)
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        Ok(self.0.save(name.to_owned(), value.to_vec())?)
    }

    fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        Ok(self.0.delete(name.to_owned())?)
    }
}

/// A shell's [`Signer`] as the core's.
pub(crate) struct ForeignSigner(pub(crate) Arc<dyn Signer>);

impl fmt::Debug for ForeignSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignSigner")
    }
}

impl opkey_core::Signer for ForeignSigner {
    fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.public_key()?)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.sign(message.to_vec())?)
    }
}
