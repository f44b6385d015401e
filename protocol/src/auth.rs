//! How a phone proves it holds the P-256 key it enrolled, without any long-lived bearer
//! secret:
//!
//! 1. **Redeem**: the phone signs `opkey-redeem-v1\n<invite secret>\n<public key>` with
//!    its new key (proof of possession) and sends it with the invite token or code.
//! 2. **Session**: before talking to the operator API the phone asks for a fresh server
//!    challenge and signs `opkey-session-v1\n<phone id>\n<challenge>`; the server answers
//!    with a short-lived access token that the phone keeps in memory only.
//!
//! Keys are SEC1 uncompressed P-256 points (65 bytes); signatures are ECDSA P-256 SHA-256
//! in ASN.1 DER, which is what Android Keystore and the iOS Secure Enclave produce.

use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

pub const REDEEM_CONTEXT: &str = "opkey-redeem-v1";
pub const SESSION_CONTEXT: &str = "opkey-session-v1";
/// Length of a SEC1 uncompressed P-256 public key.
pub const P256_PUBLIC_KEY_LEN: usize = 65;
/// Random bytes in a session challenge.
pub const CHALLENGE_BYTES: usize = 32;

/// The bytes a phone signs to redeem an invite. `invite_secret` is the token or the
/// normalised short code; `public_key_b64` is the base64url public key sent alongside.
pub fn redeem_message(invite_secret: &str, public_key_b64: &str) -> Vec<u8> {
    format!("{REDEEM_CONTEXT}\n{invite_secret}\n{public_key_b64}").into_bytes()
}

/// The bytes a phone signs to open a session.
pub fn session_message(phone_id: &str, challenge_b64: &str) -> Vec<u8> {
    format!("{SESSION_CONTEXT}\n{phone_id}\n{challenge_b64}").into_bytes()
}

/// Why a phone's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the phone public key is not a P-256 point (65-byte SEC1 uncompressed)")]
    MalformedPublicKey,
    #[error("the signature does not verify")]
    BadSignature,
}

/// Checks the shape of a public key before storing it (the curve check happens when a
/// signature is verified against it).
pub fn check_public_key_shape(public_key: &[u8]) -> Result<(), SignatureError> {
    if public_key.len() == P256_PUBLIC_KEY_LEN && public_key[0] == 0x04 {
        Ok(())
    } else {
        Err(SignatureError::MalformedPublicKey)
    }
}

/// Verifies an ECDSA P-256 SHA-256 (DER) signature by a phone key.
pub fn verify_phone_signature(
    public_key: &[u8],
    message: &[u8],
    signature_der: &[u8],
) -> Result<(), SignatureError> {
    check_public_key_shape(public_key)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(message, signature_der)
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    fn key_pair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    #[test]
    fn a_session_signed_by_the_enrolled_key_verifies_and_a_tampered_one_does_not() {
        let pair = key_pair();
        let msg = session_message("phn_1", "challenge");
        let sig = pair.sign(&SystemRandom::new(), &msg).unwrap();
        let pk = pair.public_key().as_ref();
        assert_eq!(verify_phone_signature(pk, &msg, sig.as_ref()), Ok(()));
        let other = session_message("phn_2", "challenge");
        assert_eq!(
            verify_phone_signature(pk, &other, sig.as_ref()),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_phone_signature(&pk[..64], &msg, sig.as_ref()),
            Err(SignatureError::MalformedPublicKey)
        );
    }

    #[test]
    fn another_phones_key_cannot_sign_for_this_one() {
        let (a, b) = (key_pair(), key_pair());
        let msg = redeem_message("token", "pk");
        let sig = b.sign(&SystemRandom::new(), &msg).unwrap();
        assert_eq!(
            verify_phone_signature(a.public_key().as_ref(), &msg, sig.as_ref()),
            Err(SignatureError::BadSignature)
        );
    }
}
