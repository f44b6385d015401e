//! The Digital Key credential (PROTOCOL.md 2.2): a short-lived statement by the backend
//! (the issuer) that one phone key may open some machines between two instants. A machine
//! verifies it offline with the issuer public key it was provisioned with.

use super::ReasonCode;
use super::crypto::{RAW_SIGNATURE_LEN, SignError, seal_issued, verify_issued};
use super::wire::{DecodeError, EncodeError, Reader, Writer};
use ring::rand::SecureRandom;
use ring::signature::EcdsaKeyPair;
use std::fmt;
use time::OffsetDateTime;

pub const GRANT_VERSION: u8 = 1;
/// What the issuer's signature is over, before the body.
pub const GRANT_CONTEXT: &[u8] = b"opkey-grant-v1";
/// `flags` bit 0: the key is personal.
pub const FLAG_PERSONAL: u8 = 0x01;

/// What a grant says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantBody {
    /// The key this grant stands for.
    pub key_id: String,
    /// The operator whose phone holds this grant.
    pub operator_id: String,
    /// The phone key that must sign each request (SEC1 uncompressed).
    pub phone_public_key: [u8; 65],
    /// The machines this grant opens (at least one).
    pub machine_ids: Vec<String>,
    /// Unix seconds, inclusive (on the wire a `u32`: encoding refuses later than 2106).
    pub valid_from: u64,
    /// Unix seconds, exclusive.
    pub valid_to: u64,
    /// Unix seconds; a machine's clock never falls behind this once it has seen the grant.
    pub issued_at: u64,
    pub personal: bool,
    /// The key's version: rises on every edit, so a revocation list can refuse older ones.
    pub serial: u32,
}

impl GrantBody {
    /// The `grant_body` bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.machine_ids.is_empty() {
            return Err(EncodeError::NoMachines);
        }
        let n = u8::try_from(self.machine_ids.len()).map_err(|_| EncodeError::TooMany {
            field: "machine_ids",
            count: self.machine_ids.len(),
            max: usize::from(u8::MAX),
        })?;
        let mut w = Writer::new();
        w.u8(GRANT_VERSION);
        w.id(&self.key_id, "key_id")?;
        w.id(&self.operator_id, "operator_id")?;
        w.bytes(&self.phone_public_key).u8(n);
        for id in &self.machine_ids {
            w.id(id, "machine_id")?;
        }
        w.time(self.valid_from, "valid_from")?
            .time(self.valid_to, "valid_to")?
            .time(self.issued_at, "issued_at")?
            .u8(if self.personal { FLAG_PERSONAL } else { 0 })
            .u32(self.serial);
        Ok(w.into_bytes())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        if version != GRANT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let key_id = r.id("key_id")?;
        let operator_id = r.id("operator_id")?;
        let phone_public_key = r.public_key("phone_public_key")?;
        let n = r.u8("machine_count")?;
        if n == 0 {
            return Err(DecodeError::NoMachines);
        }
        let machine_ids = (0..n).map(|_| r.id("machine_id")).collect::<Result<_, _>>()?;
        let valid_from = r.time("valid_from")?;
        let valid_to = r.time("valid_to")?;
        let issued_at = r.time("issued_at")?;
        let flags = r.u8("flags")?;
        if flags & !FLAG_PERSONAL != 0 {
            return Err(DecodeError::BadValue {
                field: "flags",
                value: u64::from(flags),
            });
        }
        let serial = r.u32("serial")?;
        Ok(Self {
            key_id,
            operator_id,
            phone_public_key,
            machine_ids,
            valid_from,
            valid_to,
            issued_at,
            personal: flags & FLAG_PERSONAL != 0,
            serial,
        })
    }
}

/// Why a grant does not open this machine now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the grant's issuer signature does not verify")]
    BadSignature,
    #[error("the grant does not name this machine")]
    WrongMachine,
    #[error("the grant is not valid yet")]
    NotYetValid,
    #[error("the grant has expired")]
    Expired,
    #[error("the grant was revoked or superseded by a newer version of the key")]
    Revoked,
}

impl GrantError {
    pub fn reason(self) -> ReasonCode {
        match self {
            GrantError::BadSignature => ReasonCode::BadGrantSignature,
            GrantError::WrongMachine => ReasonCode::WrongMachine,
            GrantError::NotYetValid => ReasonCode::NotYetValid,
            GrantError::Expired => ReasonCode::Expired,
            GrantError::Revoked => ReasonCode::Revoked,
        }
    }
}

/// A grant as it travels: the body and the issuer's raw signature. Decoding does not
/// verify; call [`Grant::verify`] before trusting anything in it.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    body: GrantBody,
    bytes: Vec<u8>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("key_id", &self.body.key_id)
            .field("serial", &self.body.serial)
            .field("machines", &self.body.machine_ids.len())
            .field("valid_from", &self.body.valid_from)
            .field("valid_to", &self.body.valid_to)
            .finish_non_exhaustive()
    }
}

impl Grant {
    /// Signs `body` as the issuer. `issuer` must be made with
    /// `ECDSA_P256_SHA256_FIXED_SIGNING`.
    pub fn sign(body: GrantBody, issuer: &EcdsaKeyPair, rng: &dyn SecureRandom) -> Result<Self, SignError> {
        let bytes = seal_issued(GRANT_CONTEXT, body.encode()?, issuer, rng)?;
        Ok(Self { body, bytes })
    }

    /// Reads a grant; the bytes must be exactly one grant.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = GrantBody::decode(&mut r)?;
        r.take(RAW_SIGNATURE_LEN, "signature")?;
        r.finish()?;
        Ok(Self {
            body,
            bytes: bytes.to_vec(),
        })
    }

    /// How many bytes at the start of `bytes` are one grant (a grant delimits itself), so
    /// that a request can carry it without a length prefix.
    pub(crate) fn encoded_len(bytes: &[u8]) -> Result<usize, DecodeError> {
        let mut r = Reader::new(bytes);
        GrantBody::decode(&mut r)?;
        r.take(RAW_SIGNATURE_LEN, "signature")?;
        Ok(bytes.len() - r.remaining())
    }

    /// Checks the issuer's signature.
    pub fn verify(&self, issuer_public_key: &[u8]) -> Result<(), GrantError> {
        if verify_issued(GRANT_CONTEXT, &self.bytes, issuer_public_key) {
            Ok(())
        } else {
            Err(GrantError::BadSignature)
        }
    }

    pub fn body(&self) -> &GrantBody {
        &self.body
    }

    pub fn key_id(&self) -> &str {
        &self.body.key_id
    }

    /// The grant as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// True when this grant names `machine_id`.
    pub fn covers(&self, machine_id: &str) -> bool {
        self.body.machine_ids.iter().any(|m| m == machine_id)
    }

    /// `valid_from ≤ now < valid_to`, `now` in Unix seconds.
    pub fn check_time(&self, now: u64) -> Result<(), GrantError> {
        if now < self.body.valid_from {
            Err(GrantError::NotYetValid)
        } else if now >= self.body.valid_to {
            Err(GrantError::Expired)
        } else {
            Ok(())
        }
    }

    /// [`Grant::check_time`] at an instant (instants before 1970 count as 0).
    pub fn check_time_at(&self, now: OffsetDateTime) -> Result<(), GrantError> {
        self.check_time(u64::try_from(now.unix_timestamp()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ble::test_support::{Issuer, PhoneKey, grant_body};
    use ring::rand::SystemRandom;

    #[test]
    fn a_grant_signed_by_the_issuer_decodes_and_verifies() {
        let (issuer, phone) = (Issuer::new(), PhoneKey::new());
        let grant = issuer.grant(grant_body("key_1", &phone, &["mch_1", "mch_2"], 100, 200));
        let decoded = Grant::decode(grant.as_bytes()).unwrap();
        assert_eq!(decoded, grant);
        assert_eq!(decoded.verify(issuer.public_key()), Ok(()));
        assert!(decoded.covers("mch_2") && !decoded.covers("mch_3"));
        assert_eq!(decoded.check_time(99), Err(GrantError::NotYetValid));
        assert_eq!(decoded.check_time(100), Ok(()));
        assert_eq!(decoded.check_time(200), Err(GrantError::Expired));
    }

    #[test]
    fn a_grant_signed_by_another_issuer_or_edited_after_signing_is_refused() {
        let (issuer, other, phone) = (Issuer::new(), Issuer::new(), PhoneKey::new());
        let grant = issuer.grant(grant_body("key_1", &phone, &["mch_1"], 100, 200));
        assert_eq!(grant.verify(other.public_key()), Err(GrantError::BadSignature));
        let mut edited = grant.as_bytes().to_vec();
        let valid_to_last_byte = edited.len() - 64 - 4 - 1 - 8 - 1;
        edited[valid_to_last_byte] ^= 0x01;
        let edited = Grant::decode(&edited).unwrap();
        assert_eq!(edited.verify(issuer.public_key()), Err(GrantError::BadSignature));
    }

    #[test]
    fn a_grant_needs_a_machine_and_short_ids() {
        let phone = PhoneKey::new();
        let mut body = grant_body("key_1", &phone, &[], 0, 1);
        assert_eq!(body.encode(), Err(EncodeError::NoMachines));
        body.machine_ids = vec!["m".repeat(65)];
        assert_eq!(
            body.encode(),
            Err(EncodeError::StringTooLong {
                field: "machine_id",
                len: 65
            })
        );
    }

    #[test]
    fn an_asn1_issuer_key_cannot_sign_wire_grants() {
        let rng = SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let body = grant_body("key_1", &PhoneKey::new(), &["mch_1"], 0, 1);
        assert_eq!(Grant::sign(body, &key, &rng), Err(SignError::NotFixedSigning));
    }

    #[test]
    fn unknown_flags_and_versions_are_refused() {
        let grant = Issuer::new().grant(grant_body("key_1", &PhoneKey::new(), &["mch_1"], 0, 1));
        let mut bytes = grant.into_bytes();
        let flags = bytes.len() - 64 - 4 - 1;
        bytes[flags] = 0x02;
        assert_eq!(
            Grant::decode(&bytes),
            Err(DecodeError::BadValue {
                field: "flags",
                value: 2
            })
        );
        bytes[0] = 2;
        assert_eq!(Grant::decode(&bytes), Err(DecodeError::UnsupportedVersion(2)));
    }
}
