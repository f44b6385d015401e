//! The secrets key: 32 random bytes in a file beside the database
//! (`<db file name>.secrets-key`, mode 0600), created on first start and from then on only
//! read. Rolling PIN seeds and Static PINs are stored sealed under it with AES-256-GCM
//! (ring), the key id as associated data and a fresh random nonce per value, so the
//! database alone reveals no PIN secret and a sealed value cannot be moved to another key.
//! Invites' short codes are sealed the same way, bound to the invite id (for the invite's
//! landing page).
//!
//! Two subkeys are derived with HKDF-SHA256: one seals, the other computes the Static PIN
//! *tag* (HMAC-SHA256 of the PIN), which lets the database check that a PIN is unique on
//! a machine without holding the PIN.
//!
//! A file that exists but cannot be read, or is not 32 bytes, stops the server: it is
//! never replaced, because every sealed secret would be lost. An in-memory database gets a
//! key that lives in memory only. Never logs or prints key material or what it seals.

use crate::error::ApiError;
use crate::key_file;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use zeroize::Zeroizing;

/// What the default secrets key file's name adds to the database file's name.
pub const SECRETS_KEY_SUFFIX: &str = ".secrets-key";
/// Bytes in the secrets key file.
pub const SECRETS_KEY_LEN: usize = 32;
/// The first byte of a sealed value: the format (nonce ‖ ciphertext ‖ tag).
const SEALED_V1: u8 = 1;

/// Why the secrets key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsKeyError {
    #[error("cannot read it ({0}); fix its permissions, or restore it from a backup")]
    Unreadable(io::Error),
    #[error(
        "it is not {SECRETS_KEY_LEN} bytes; restore it from a backup (the PIN seeds and Static PINs \
         in the database are sealed with it). Only if it is lost for good: move it away to create a \
         new one, then delete and re-create every Rolling PIN and Static PIN key"
    )]
    Corrupt,
    #[error("cannot create it ({0}); check that its folder exists and is writable")]
    Create(io::Error),
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
}

/// The key that seals PIN secrets at rest. `Debug` shows nothing of it.
pub struct SecretsKey {
    seal: LessSafeKey,
    tag: hmac::Key,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// Reads the key at `path`, or creates it there when no file exists.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretsKeyError> {
        match fs::read(path) {
            Ok(bytes) => {
                key_file::warn_if_readable_by_others(path, "the secrets key file");
                Self::from_bytes(&Zeroizing::new(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let rng = SystemRandom::new();
                let bytes = random_key(&rng)?;
                if key_file::create_private_file(path, bytes.as_slice(), &rng)
                    .map_err(SecretsKeyError::Create)?
                {
                    tracing::info!(path = %path.display(), "created a new secrets key");
                    Self::from_bytes(bytes.as_slice())
                } else {
                    // Another process created it first: use theirs.
                    let bytes = fs::read(path).map_err(SecretsKeyError::Unreadable)?;
                    Self::from_bytes(&Zeroizing::new(bytes))
                }
            }
            Err(e) => Err(SecretsKeyError::Unreadable(e)),
        }
    }

    /// A key that lives in memory only (for an in-memory database).
    pub fn ephemeral(rng: &dyn SecureRandom) -> Result<Self, SecretsKeyError> {
        Self::from_bytes(random_key(rng)?.as_slice())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SecretsKeyError> {
        if bytes.len() != SECRETS_KEY_LEN {
            return Err(SecretsKeyError::Corrupt);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"opkey-secrets-key-v1").extract(bytes);
        let seal = prk
            .expand(&[b"seal"], &AES_256_GCM)
            .map(UnboundKey::from)
            .map_err(|_| SecretsKeyError::Corrupt)?;
        let tag = prk
            .expand(&[b"static-pin-tag"], hmac::HMAC_SHA256)
            .map(hmac::Key::from)
            .map_err(|_| SecretsKeyError::Corrupt)?;
        Ok(Self {
            seal: LessSafeKey::new(seal),
            tag,
        })
    }

    /// Seals `plaintext` for key `key_id`: version ‖ random nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, rng: &dyn SecureRandom, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.seal_for(rng, key_id.as_bytes(), plaintext)
            .map_err(|_| ApiError::Internal(format!("cannot seal a PIN secret of key {key_id}")))
    }

    /// Opens what [`SecretsKey::seal`] sealed for `key_id`.
    pub fn open(&self, key_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        self.open_for(key_id.as_bytes(), sealed).ok_or_else(|| {
            ApiError::Internal(format!(
                "the stored PIN secret of key {key_id} does not open with the secrets key \
                 (a different or replaced secrets key file?)"
            ))
        })
    }

    /// Seals an invite's short code (for its landing page), bound to the invite's id.
    pub fn seal_invite_code(
        &self,
        rng: &dyn SecureRandom,
        invite_id: &str,
        code: &str,
    ) -> Result<Vec<u8>, ApiError> {
        self.seal_for(rng, invite_code_aad(invite_id).as_bytes(), code.as_bytes())
            .map_err(|_| ApiError::Internal(format!("cannot seal the short code of invite {invite_id}")))
    }

    /// Opens what [`SecretsKey::seal_invite_code`] sealed; `None` when it does not open.
    pub fn open_invite_code(&self, invite_id: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.open_for(invite_code_aad(invite_id).as_bytes(), sealed)
    }

    fn seal_for(
        &self,
        rng: &dyn SecureRandom,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ring::error::Unspecified> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let mut in_out = Zeroizing::new(plaintext.to_vec());
        let tag = self.seal.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len() + tag.as_ref().len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    fn open_for(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let rest = match sealed.split_first() {
            Some((&SEALED_V1, rest)) if rest.len() >= NONCE_LEN => rest,
            _ => return None,
        };
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .seal
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .ok()?
            .len();
        in_out.truncate(len);
        Some(in_out)
    }

    /// The Static PIN's tag: equal PINs have equal tags; the tag alone does not give the PIN.
    pub fn static_pin_tag(&self, pin: &str) -> Vec<u8> {
        hmac::sign(&self.tag, pin.as_bytes()).as_ref().to_vec()
    }
}

/// The associated data of an invite's sealed short code: never equal to a key id.
fn invite_code_aad(invite_id: &str) -> String {
    format!("opkey-invite-code-v1:{invite_id}")
}

fn random_key(rng: &dyn SecureRandom) -> Result<Zeroizing<[u8; SECRETS_KEY_LEN]>, SecretsKeyError> {
    let mut bytes = Zeroizing::new([0u8; SECRETS_KEY_LEN]);
    rng.fill(&mut *bytes).map_err(|_| SecretsKeyError::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private_and_opens_what_it_sealed_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opkey.db.secrets-key");
        let rng = SystemRandom::new();
        let first = SecretsKey::load_or_create(&path).unwrap();
        let sealed = first.seal(&rng, "key_1", b"seed bytes").unwrap();
        let again = SecretsKey::load_or_create(&path).unwrap();
        assert_eq!(again.open("key_1", &sealed).unwrap().as_slice(), b"seed bytes");
        assert_eq!(fs::read(&path).unwrap().len(), SECRETS_KEY_LEN);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_key_id_and_untampered() {
        let rng = SystemRandom::new();
        let key = SecretsKey::ephemeral(&rng).unwrap();
        let sealed = key.seal(&rng, "key_1", b"123456").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_ne!(sealed, key.seal(&rng, "key_1", b"123456").unwrap(), "fresh nonce");
        assert!(key.open("key_2", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open("key_1", &tampered).is_err());
        let other = SecretsKey::ephemeral(&rng).unwrap();
        let message = other.open("key_1", &sealed).unwrap_err().to_string();
        assert!(!message.contains("123456"), "{message}");
        assert_eq!(key.static_pin_tag("1234"), key.static_pin_tag("1234"));
        assert_ne!(key.static_pin_tag("1234"), other.static_pin_tag("1234"));
        assert_eq!(format!("{key:?}"), "SecretsKey(<redacted>)");
    }

    #[test]
    fn an_invite_code_opens_only_for_its_invite_and_never_as_a_pin_secret() {
        let rng = SystemRandom::new();
        let key = SecretsKey::ephemeral(&rng).unwrap();
        let sealed = key.seal_invite_code(&rng, "inv_1", "ABCDEFGHJKM").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"ABCDEFGHJKM"));
        assert_eq!(
            key.open_invite_code("inv_1", &sealed).unwrap().as_slice(),
            b"ABCDEFGHJKM"
        );
        assert!(key.open_invite_code("inv_2", &sealed).is_none());
        assert!(key.open("inv_1", &sealed).is_err());
        let pin = key.seal(&rng, "inv_1", b"1234").unwrap();
        assert!(key.open_invite_code("inv_1", &pin).is_none());
    }

    #[test]
    fn a_short_or_unreadable_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets-key");
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            SecretsKey::load_or_create(&path),
            Err(SecretsKeyError::Corrupt)
        ));
        assert_eq!(fs::read(&path).unwrap(), b"short");
        // A folder where the file should be cannot be read as a key.
        let folder = dir.path().join("folder-key");
        fs::create_dir(&folder).unwrap();
        assert!(matches!(
            SecretsKey::load_or_create(&folder),
            Err(SecretsKeyError::Unreadable(_))
        ));
    }
}
