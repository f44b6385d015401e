//! The phone's P-256 key, behind the [`Signer`] trait so the shells can keep it in
//! Android Keystore / StrongBox or the iOS Secure Enclave. [`SoftwareSigner`] is the
//! fallback and the test signer: its PKCS#8 lives only sealed in the store.
//!
//! Never logs or formats a private key or a signature.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use std::fmt;
use zeroize::Zeroizing;

/// Signs with the phone's P-256 key.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The public key, SEC1 uncompressed (65 bytes, starting with 0x04).
    fn public_key(&self) -> Result<Vec<u8>, SignerError>;
    /// ECDSA P-256 SHA-256 over `message`, ASN.1 DER.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// Why the phone key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The key is gone or was invalidated (e.g. the phone's lock screen was removed).
    #[error("this phone's key is no longer available ({reason}); re-enroll with a new invite")]
    KeyUnavailable { reason: String },
    /// The key exists but refused to sign (e.g. the user cancelled a prompt).
    #[error("this phone's key could not sign ({reason}); try again")]
    SigningFailed { reason: String },
    /// The signer returned something that is not a P-256 public key.
    #[error("this phone's key is not a P-256 key")]
    InvalidPublicKey,
}

/// A ring ECDSA P-256 key pair held in memory.
pub struct SoftwareSigner {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareSigner(…)")
    }
}

impl SoftwareSigner {
    /// A fresh key: the signer and its PKCS#8 document, which the caller must keep
    /// only sealed.
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), SignerError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|_| {
            SignerError::KeyUnavailable {
                reason: "no randomness to create a key".into(),
            }
        })?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// The signer for a PKCS#8 document made by [`SoftwareSigner::generate`].
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).map_err(|_| {
            SignerError::KeyUnavailable {
                reason: "the stored key is unreadable".into(),
            }
        })?;
        Ok(Self { pair, rng })
    }
}

impl Signer for SoftwareSigner {
    fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        Ok(self.pair.public_key().as_ref().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignerError::SigningFailed {
                reason: "ECDSA signing failed".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkey_protocol::auth;

    #[test]
    fn a_software_signature_verifies_as_a_phone_signature() {
        let (signer, pkcs8) = SoftwareSigner::generate().unwrap();
        let pk = signer.public_key().unwrap();
        assert_eq!(pk.len(), auth::P256_PUBLIC_KEY_LEN);
        let msg = auth::session_message("phn_1", "challenge");
        let sig = signer.sign(&msg).unwrap();
        assert_eq!(auth::verify_phone_signature(&pk, &msg, &sig), Ok(()));

        let again = SoftwareSigner::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(again.public_key().unwrap(), pk);
        assert_eq!(format!("{again:?}"), "SoftwareSigner(…)");
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(
            SoftwareSigner::from_pkcs8(b"not pkcs8"),
            Err(SignerError::KeyUnavailable { .. })
        ));
    }
}
