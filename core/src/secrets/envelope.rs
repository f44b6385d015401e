//! AES-256-GCM envelopes under the data key.
//!
//! Layout: `version (1) ‖ nonce (12, random) ‖ ciphertext ‖ tag (16)`. The associated
//! data names the envelope's *place* (for example `secret:signer`), so a ciphertext
//! copied into another slot does not open. Plaintexts come back in [`Zeroizing`]
//! buffers; nothing here logs or formats a key or a plaintext.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use zeroize::Zeroizing;

/// Length of the data key.
pub(crate) const DATA_KEY_LEN: usize = 32;
const VERSION: u8 = 1;
const AAD_PREFIX: &str = "opkey-envelope-v1:";
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("the sealed value is malformed")]
    Malformed,
    /// Wrong key, tampered bytes, or the envelope was moved from another place.
    #[error("the sealed value does not open with this key in this place")]
    DoesNotOpen,
    #[error("the system random generator failed")]
    NoRandomness,
}

/// The 32-byte key that seals every secret in the store.
pub(crate) struct DataKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// Fresh random key bytes, to hand to the platform's secret store.
    pub(crate) fn generate_bytes() -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let mut bytes = Zeroizing::new(vec![0u8; DATA_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| EnvelopeError::NoRandomness)?;
        Ok(bytes)
    }

    /// `None` when `bytes` is not a 32-byte key.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != DATA_KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    pub(crate) fn seal(&self, place: &str, plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| EnvelopeError::NoRandomness)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                aad(place),
                &mut out[1 + NONCE_LEN..],
            )
            .map_err(|_| EnvelopeError::Malformed)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    pub(crate) fn open(&self, place: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(EnvelopeError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| EnvelopeError::Malformed)?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(nonce, aad(place), &mut buf)
            .map_err(|_| EnvelopeError::DoesNotOpen)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn aad(place: &str) -> Aad<Vec<u8>> {
    Aad::from(format!("{AAD_PREFIX}{place}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&DataKey::generate_bytes().unwrap()).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_in_its_place() {
        let (k, other) = (key(), key());
        let sealed = k.seal("secret:signer", b"pkcs8 bytes").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"pkcs8 bytes"));
        assert_eq!(&*k.open("secret:signer", &sealed).unwrap(), b"pkcs8 bytes");
        assert_eq!(k.open("secret:invite", &sealed), Err(EnvelopeError::DoesNotOpen));
        assert_eq!(
            other.open("secret:signer", &sealed),
            Err(EnvelopeError::DoesNotOpen)
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            k.open("secret:signer", &tampered),
            Err(EnvelopeError::DoesNotOpen)
        );
        assert_eq!(
            k.open("secret:signer", &sealed[..10]),
            Err(EnvelopeError::Malformed)
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let k = key();
        assert_ne!(k.seal("p", b"same").unwrap(), k.seal("p", b"same").unwrap());
    }

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert!(DataKey::from_bytes(&[0u8; 16]).is_none());
        assert!(DataKey::from_bytes(&[0u8; 33]).is_none());
    }
}
