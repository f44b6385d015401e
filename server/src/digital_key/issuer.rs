//! The issuer key: the backend's P-256 key that signs grants and revocation lists.
//! Machines are provisioned with its public half and trust nothing else, so the file
//! must survive restarts: it is created once (PKCS#8, mode 0600, written to a temporary
//! file and linked into place so it appears whole or not at all) and from then on only
//! read. A file that exists but cannot be read or parsed stops the server; it is never
//! replaced silently, because every machine would then refuse every grant.
//!
//! Never logs or prints the private key; `Debug` shows the public key only.

use crate::key_file;
use opkey_protocol::ble::{Grant, GrantBody, RevocationBody, RevocationList, SignError};
use opkey_protocol::encoding::b64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use zeroize::Zeroizing;

/// Why the issuer key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerKeyError {
    #[error("cannot read it ({0}); fix its permissions, or restore it from a backup")]
    Unreadable(io::Error),
    #[error(
        "it is not a P-256 PKCS#8 key; restore it from a backup (machines trust its public key). \
         Only if it is lost for good: move it away to create a new one, then re-provision every machine"
    )]
    Corrupt,
    #[error("cannot create it ({0}); check that its folder exists and is writable")]
    Create(io::Error),
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
}

/// The backend's grant-signing key and the randomness its signatures need.
pub struct Issuer {
    pair: EcdsaKeyPair,
    public_key: String,
    rng: SystemRandom,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Reads the key at `path`, or creates it there when no file exists.
    pub fn load_or_create(path: &Path) -> Result<Self, IssuerKeyError> {
        let rng = SystemRandom::new();
        match fs::read(path) {
            Ok(bytes) => {
                key_file::warn_if_readable_by_others(path, "the issuer key file");
                Self::from_pkcs8(&Zeroizing::new(bytes), rng)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| IssuerKeyError::Random)?;
                let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
                if key_file::create_private_file(path, &pkcs8, &rng).map_err(IssuerKeyError::Create)? {
                    tracing::info!(path = %path.display(), "created a new issuer key");
                    Self::from_pkcs8(&pkcs8, rng)
                } else {
                    // Another process created it first: use theirs.
                    let bytes = fs::read(path).map_err(IssuerKeyError::Unreadable)?;
                    Self::from_pkcs8(&Zeroizing::new(bytes), rng)
                }
            }
            Err(e) => Err(IssuerKeyError::Unreadable(e)),
        }
    }

    fn from_pkcs8(pkcs8: &[u8], rng: SystemRandom) -> Result<Self, IssuerKeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| IssuerKeyError::Corrupt)?;
        let public_key = b64(pair.public_key().as_ref());
        Ok(Self {
            pair,
            public_key,
            rng,
        })
    }

    /// The public key machines verify with: SEC1 uncompressed, base64url.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn sign_grant(&self, body: GrantBody) -> Result<Grant, SignError> {
        Grant::sign(body, &self.pair, &self.rng)
    }

    pub fn sign_revocations(&self, body: RevocationBody) -> Result<RevocationList, SignError> {
        RevocationList::sign(body, &self.pair, &self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opkey.db.issuer-key");
        let first = Issuer::load_or_create(&path).unwrap();
        let again = Issuer::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file stays behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer-key");
        fs::write(&path, b"not a key").unwrap();
        assert!(matches!(
            Issuer::load_or_create(&path),
            Err(IssuerKeyError::Corrupt)
        ));
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
    }

    #[test]
    fn debug_output_shows_only_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_create(&dir.path().join("k")).unwrap();
        let text = format!("{issuer:?}");
        assert!(text.contains(issuer.public_key()), "{text}");
        assert!(!text.contains("pair"), "{text}");
    }
}
