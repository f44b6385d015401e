//! The cryptography of the exchange, all from `ring`: raw (`r ‖ s`) P-256 signatures and
//! their DER form, the ECDH + HKDF key schedule, the one-shot AES-256-GCM seal and open,
//! and the transcript the phone signs. Nothing here keeps state or logs; no key material
//! appears in any `Debug` output or error.

use super::wire::{EncodeError, Writer};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
use ring::digest::{SHA256, digest};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::SecureRandom;
use ring::signature::{self, ECDSA_P256_SHA256_FIXED, EcdsaKeyPair};

/// Length of a raw `r ‖ s` P-256 signature.
pub const RAW_SIGNATURE_LEN: usize = 64;
/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

pub const HELLO_CONTEXT: &[u8] = b"opkey-hello-v1";
pub const REQUEST_CONTEXT: &[u8] = b"opkey-request-v1";
pub const RESULT_CONTEXT: &[u8] = b"opkey-result-v1";
pub const REQUEST_KEY_INFO: &[u8] = b"opkey-v1 request";
pub const RESULT_KEY_INFO: &[u8] = b"opkey-v1 result";

/// A P-256 signature that is not strict DER (`SEQUENCE { INTEGER r, INTEGER s }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a DER-encoded P-256 ECDSA signature")]
pub struct MalformedDerSignature;

/// Why signing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the signing key must be made with ECDSA_P256_SHA256_FIXED_SIGNING (raw r ‖ s)")]
    NotFixedSigning,
    #[error("the signing key failed to sign")]
    Crypto,
}

/// Signs `message` with a key pair made for `ECDSA_P256_SHA256_FIXED_SIGNING`.
pub fn sign_raw(
    key: &EcdsaKeyPair,
    rng: &dyn SecureRandom,
    message: &[u8],
) -> Result<[u8; RAW_SIGNATURE_LEN], SignError> {
    let sig = key.sign(rng, message).map_err(|_| SignError::Crypto)?;
    sig.as_ref().try_into().map_err(|_| SignError::NotFixedSigning)
}

/// True when `signature` (raw `r ‖ s`) is `public_key`'s signature of `message`.
pub fn verify_raw(public_key: &[u8], message: &[u8], signature: &[u8; RAW_SIGNATURE_LEN]) -> bool {
    signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(message, signature)
        .is_ok()
}

/// An issuer-signed document (grant, revocation list) as it travels:
/// `body ‖ raw signature over context ‖ body`. Signs `body` and appends the signature.
pub(crate) fn seal_issued(
    context: &[u8],
    mut body: Vec<u8>,
    issuer: &EcdsaKeyPair,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, SignError> {
    let signature = sign_raw(issuer, rng, &[context, &body].concat())?;
    body.extend_from_slice(&signature);
    Ok(body)
}

/// True when `document` (as [`seal_issued`] made it) carries `issuer_public_key`'s
/// signature over `context ‖ body`.
pub(crate) fn verify_issued(context: &[u8], document: &[u8], issuer_public_key: &[u8]) -> bool {
    let Some(split) = document.len().checked_sub(RAW_SIGNATURE_LEN) else {
        return false;
    };
    let (body, signature) = document.split_at(split);
    let signature = signature.try_into().expect("split at the signature length");
    verify_raw(issuer_public_key, &[context, body].concat(), signature)
}

/// Converts a DER signature (what Android Keystore and the Secure Enclave return) to the
/// raw `r ‖ s` form the BLE wire carries. Strict DER only: minimal lengths and integers,
/// no trailing bytes.
pub fn der_to_raw(der: &[u8]) -> Result<[u8; RAW_SIGNATURE_LEN], MalformedDerSignature> {
    fn integer<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], MalformedDerSignature> {
        let data: &'a [u8] = input;
        let [0x02, len, rest @ ..] = data else {
            return Err(MalformedDerSignature);
        };
        let len = usize::from(*len);
        if len == 0 || len > 33 || rest.len() < len {
            return Err(MalformedDerSignature);
        }
        let (value, tail) = rest.split_at(len);
        // Positive and minimal: no sign bit, and a leading zero only before a sign bit.
        if value[0] & 0x80 != 0 || (len > 1 && value[0] == 0 && value[1] & 0x80 == 0) {
            return Err(MalformedDerSignature);
        }
        let value = if value[0] == 0 && len > 1 {
            &value[1..]
        } else {
            value
        };
        if value.len() > 32 {
            return Err(MalformedDerSignature);
        }
        *input = tail;
        Ok(value)
    }

    let [0x30, len, body @ ..] = der else {
        return Err(MalformedDerSignature);
    };
    let mut body = body;
    if usize::from(*len) != body.len() || *len >= 0x80 {
        return Err(MalformedDerSignature);
    }
    let r = integer(&mut body)?;
    let s = integer(&mut body)?;
    if !body.is_empty() {
        return Err(MalformedDerSignature);
    }
    let mut raw = [0u8; RAW_SIGNATURE_LEN];
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Ok(raw)
}

/// Converts a raw `r ‖ s` signature to DER.
pub fn raw_to_der(raw: &[u8; RAW_SIGNATURE_LEN]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, value: &[u8]) {
        let first = value.iter().position(|&b| b != 0).unwrap_or(value.len() - 1);
        let value = &value[first..];
        let pad = value[0] & 0x80 != 0;
        out.push(0x02);
        out.push((value.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::with_capacity(70);
    integer(&mut body, &raw[..32]);
    integer(&mut body, &raw[32..]);
    let mut der = Vec::with_capacity(body.len() + 2);
    der.push(0x30);
    der.push(body.len() as u8);
    der.extend_from_slice(&body);
    der
}

/// The two one-shot keys of one exchange.
#[derive(Debug)]
pub(crate) struct SessionKeys {
    pub(crate) request: LessSafeKey,
    pub(crate) result: LessSafeKey,
}

/// A fresh ephemeral P-256 key and its SEC1 public half.
pub(crate) fn ephemeral_key(
    rng: &dyn SecureRandom,
) -> Result<(EphemeralPrivateKey, [u8; 65]), ring::error::Unspecified> {
    let private = EphemeralPrivateKey::generate(&ECDH_P256, rng)?;
    let public = private.compute_public_key()?;
    let public: [u8; 65] = public.as_ref().try_into().map_err(|_| ring::error::Unspecified)?;
    Ok((private, public))
}

/// ECDH with the peer's ephemeral key, then HKDF-SHA256 with
/// `salt = SHA-256(hello ‖ phone_ephemeral_public_key)`. Fails when the peer's key is not
/// a point on P-256.
pub(crate) fn derive_keys(
    own: EphemeralPrivateKey,
    peer_public_key: &[u8; 65],
    hello: &[u8],
    phone_ephemeral_public_key: &[u8; 65],
) -> Result<SessionKeys, ring::error::Unspecified> {
    let mut salted = Vec::with_capacity(hello.len() + 65);
    salted.extend_from_slice(hello);
    salted.extend_from_slice(phone_ephemeral_public_key);
    let salt = Salt::new(HKDF_SHA256, digest(&SHA256, &salted).as_ref());
    let peer = UnparsedPublicKey::new(&ECDH_P256, peer_public_key);
    agree_ephemeral(own, &peer, |shared| {
        let prk = salt.extract(shared);
        let key = |info: &[u8]| -> Result<LessSafeKey, ring::error::Unspecified> {
            let info = [info];
            let okm = prk.expand(&info, &AES_256_GCM)?;
            Ok(LessSafeKey::new(UnboundKey::from(okm)))
        };
        Ok(SessionKeys {
            request: key(REQUEST_KEY_INFO)?,
            result: key(RESULT_KEY_INFO)?,
        })
    })?
}

/// Each key encrypts exactly one message, so the nonce is all zeros.
fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

/// AES-256-GCM with the all-zero nonce: ciphertext ‖ 16-byte tag.
pub(crate) fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut in_out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    in_out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(zero_nonce(), Aad::from(aad), &mut in_out)
        .expect("AES-GCM seals any message shorter than 64 GiB");
    in_out
}

/// Opens what [`seal`] made; `None` when the tag does not verify.
pub(crate) fn open(key: &LessSafeKey, aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let mut in_out = ciphertext.to_vec();
    let len = key
        .open_in_place(zero_nonce(), Aad::from(aad), &mut in_out)
        .ok()?
        .len();
    in_out.truncate(len);
    Some(in_out)
}

/// What the phone signs: `"opkey-request-v1" ‖ hello ‖ phone_ephemeral_public_key ‖
/// u8 command ‖ str key_id`, where `hello` is the whole Hello message as received.
pub fn request_transcript(
    hello: &[u8],
    phone_ephemeral_public_key: &[u8; 65],
    command: u8,
    key_id: &str,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    w.bytes(REQUEST_CONTEXT)
        .bytes(hello)
        .bytes(phone_ephemeral_public_key)
        .u8(command);
    w.id(key_id, "key_id")?;
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, KeyPair,
    };

    fn pair(alg: &'static signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
    }

    #[test]
    fn a_keystore_der_signature_becomes_a_wire_signature_that_verifies() {
        let rng = SystemRandom::new();
        let key = pair(&ECDSA_P256_SHA256_ASN1_SIGNING);
        for i in 0..64u8 {
            let msg = [i; 10];
            let der = key.sign(&rng, &msg).unwrap();
            let raw = der_to_raw(der.as_ref()).unwrap();
            assert!(verify_raw(key.public_key().as_ref(), &msg, &raw));
            assert_eq!(raw_to_der(&raw), der.as_ref());
        }
    }

    #[test]
    fn a_wire_signature_converted_to_der_verifies_as_der() {
        let rng = SystemRandom::new();
        let key = pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        for i in 0..64u8 {
            let msg = [i; 3];
            let raw = sign_raw(&key, &rng, &msg).unwrap();
            let der = raw_to_der(&raw);
            signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref())
                .verify(&msg, &der)
                .unwrap();
            assert_eq!(der_to_raw(&der), Ok(raw));
        }
    }

    #[test]
    fn small_integers_are_padded_and_high_bits_get_a_zero_byte() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        let der = raw_to_der(&raw);
        assert_eq!(&der[..7], &[0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21]);
        assert_eq!(der[7], 0);
        assert_eq!(der_to_raw(&der), Ok(raw));
    }

    #[test]
    fn loose_der_is_refused() {
        let good = raw_to_der(&[0x11; 64]);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(der_to_raw(&trailing), Err(MalformedDerSignature));
        let mut negative = good.clone();
        negative[4] = 0x91;
        assert_eq!(der_to_raw(&negative), Err(MalformedDerSignature));
        // A non-minimal leading zero.
        let padded = [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        assert_eq!(der_to_raw(&padded), Err(MalformedDerSignature));
        assert_eq!(der_to_raw(&[]), Err(MalformedDerSignature));
        assert_eq!(der_to_raw(&good[..good.len() - 1]), Err(MalformedDerSignature));
    }

    #[test]
    fn an_asn1_signing_key_is_refused_for_wire_signatures() {
        let key = pair(&ECDSA_P256_SHA256_ASN1_SIGNING);
        assert_eq!(
            sign_raw(&key, &SystemRandom::new(), b"m"),
            Err(SignError::NotFixedSigning)
        );
    }

    #[test]
    fn both_ends_derive_the_same_keys_and_a_flipped_bit_does_not_open() {
        let rng = SystemRandom::new();
        let (machine, machine_pub) = ephemeral_key(&rng).unwrap();
        let (phone, phone_pub) = ephemeral_key(&rng).unwrap();
        let hello = b"hello bytes";
        let m = derive_keys(machine, &phone_pub, hello, &phone_pub).unwrap();
        let p = derive_keys(phone, &machine_pub, hello, &phone_pub).unwrap();
        let sealed = seal(&p.request, REQUEST_CONTEXT, b"unlock");
        assert_eq!(
            open(&m.request, REQUEST_CONTEXT, &sealed).as_deref(),
            Some(&b"unlock"[..])
        );
        assert_eq!(open(&m.result, REQUEST_CONTEXT, &sealed), None);
        assert_eq!(open(&m.request, RESULT_CONTEXT, &sealed), None);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(open(&m.request, REQUEST_CONTEXT, &tampered), None);
    }
}
