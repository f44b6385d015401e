//! The revocation list (PROTOCOL.md 2.3): the issuer's signed statement of which keys a
//! machine must refuse, and below which serial. One list per machine, so it stays small
//! enough to ride inside an unlock request; a machine keeps the highest sequence it has
//! seen and ignores older lists.

use super::crypto::{RAW_SIGNATURE_LEN, SignError, seal_issued, verify_issued};
use super::wire::{DecodeError, EncodeError, Reader, Writer};
use ring::rand::SecureRandom;
use ring::signature::EcdsaKeyPair;
use std::fmt;

pub const REVOCATION_VERSION: u8 = 1;
/// What the issuer's signature is over, before the body.
pub const REVOCATION_CONTEXT: &[u8] = b"opkey-revocations-v1";
/// `min_serial` meaning "every version of this key".
pub const REVOKED_ENTIRELY: u32 = u32::MAX;

/// One key a machine must refuse below `min_serial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub key_id: String,
    pub min_serial: u32,
}

/// What a revocation list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationBody {
    /// The machine this list is for.
    pub machine_id: String,
    /// Rises with every list issued for this machine.
    pub sequence: u32,
    /// Unix seconds.
    pub issued_at: u64,
    pub entries: Vec<Revocation>,
}

impl RevocationBody {
    /// The `list_body` bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let n = u16::try_from(self.entries.len()).map_err(|_| EncodeError::TooMany {
            field: "entries",
            count: self.entries.len(),
            max: usize::from(u16::MAX),
        })?;
        let mut w = Writer::new();
        w.u8(REVOCATION_VERSION);
        w.id(&self.machine_id, "machine_id")?;
        w.u32(self.sequence).time(self.issued_at, "issued_at")?.u16(n);
        for entry in &self.entries {
            w.id(&entry.key_id, "key_id")?;
            w.u32(entry.min_serial);
        }
        Ok(w.into_bytes())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        if version != REVOCATION_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let machine_id = r.id("machine_id")?;
        let sequence = r.u32("sequence")?;
        let issued_at = r.time("issued_at")?;
        let n = r.u16("entry_count")?;
        // Each entry is at least 6 bytes: refuse an impossible count before allocating.
        if usize::from(n) * 6 > r.remaining() {
            return Err(DecodeError::Truncated { field: "entries" });
        }
        let entries = (0..n)
            .map(|_| {
                Ok(Revocation {
                    key_id: r.id("key_id")?,
                    min_serial: r.u32("min_serial")?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            machine_id,
            sequence,
            issued_at,
            entries,
        })
    }
}

/// Why a revocation list was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    #[error("the revocation list's issuer signature does not verify")]
    BadSignature,
}

/// A signed revocation list as it travels. Decoding does not verify; call
/// [`RevocationList::verify`] before relying on it.
#[derive(Clone, PartialEq, Eq)]
pub struct RevocationList {
    body: RevocationBody,
    bytes: Vec<u8>,
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("machine_id", &self.body.machine_id)
            .field("sequence", &self.body.sequence)
            .field("entries", &self.body.entries.len())
            .finish_non_exhaustive()
    }
}

impl RevocationList {
    /// Signs `body` as the issuer (a key made with `ECDSA_P256_SHA256_FIXED_SIGNING`).
    pub fn sign(
        body: RevocationBody,
        issuer: &EcdsaKeyPair,
        rng: &dyn SecureRandom,
    ) -> Result<Self, SignError> {
        let bytes = seal_issued(REVOCATION_CONTEXT, body.encode()?, issuer, rng)?;
        Ok(Self { body, bytes })
    }

    /// Reads a list; the bytes must be exactly one list.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = RevocationBody::decode(&mut r)?;
        r.take(RAW_SIGNATURE_LEN, "signature")?;
        r.finish()?;
        Ok(Self {
            body,
            bytes: bytes.to_vec(),
        })
    }

    /// Checks the issuer's signature.
    pub fn verify(&self, issuer_public_key: &[u8]) -> Result<(), RevocationError> {
        if verify_issued(REVOCATION_CONTEXT, &self.bytes, issuer_public_key) {
            Ok(())
        } else {
            Err(RevocationError::BadSignature)
        }
    }

    pub fn body(&self) -> &RevocationBody {
        &self.body
    }

    pub fn machine_id(&self) -> &str {
        &self.body.machine_id
    }

    pub fn sequence(&self) -> u32 {
        self.body.sequence
    }

    pub fn issued_at(&self) -> u64 {
        self.body.issued_at
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// True when a grant of `key_id` at `serial` must be refused: its serial is below the
    /// entry's `min_serial`, or the key is revoked entirely.
    pub fn refuses(&self, key_id: &str, serial: u32) -> bool {
        self.body
            .entries
            .iter()
            .any(|e| e.key_id == key_id && (e.min_serial == REVOKED_ENTIRELY || serial < e.min_serial))
    }

    /// True when `key_id` is revoked entirely (no later grant can help).
    pub fn revokes_entirely(&self, key_id: &str) -> bool {
        self.body
            .entries
            .iter()
            .any(|e| e.key_id == key_id && e.min_serial == REVOKED_ENTIRELY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ble::test_support::Issuer;

    fn entry(key_id: &str, min_serial: u32) -> Revocation {
        Revocation {
            key_id: key_id.into(),
            min_serial,
        }
    }

    #[test]
    fn a_list_refuses_older_serials_and_entirely_revoked_keys() {
        let issuer = Issuer::new();
        let list = issuer.revocations(
            "mch_1",
            3,
            1000,
            vec![entry("key_a", 5), entry("key_b", REVOKED_ENTIRELY)],
        );
        let decoded = RevocationList::decode(list.as_bytes()).unwrap();
        assert_eq!(decoded, list);
        assert_eq!(decoded.verify(issuer.public_key()), Ok(()));
        assert!(decoded.refuses("key_a", 4));
        assert!(!decoded.refuses("key_a", 5));
        assert!(decoded.refuses("key_b", 0));
        assert!(decoded.refuses("key_b", u32::MAX));
        assert!(!decoded.refuses("key_c", 0));
        assert!(decoded.revokes_entirely("key_b") && !decoded.revokes_entirely("key_a"));
    }

    #[test]
    fn a_list_signed_by_someone_else_is_refused() {
        let list = Issuer::new().revocations("mch_1", 1, 0, vec![]);
        assert_eq!(
            list.verify(Issuer::new().public_key()),
            Err(RevocationError::BadSignature)
        );
    }

    #[test]
    fn an_impossible_entry_count_is_refused_without_allocating() {
        let list = Issuer::new().revocations("mch_1", 1, 0, vec![]);
        let mut bytes = list.into_bytes();
        let count = 1 + 6 + 4 + 4;
        bytes[count] = 0xff;
        bytes[count + 1] = 0xff;
        assert_eq!(
            RevocationList::decode(&bytes),
            Err(DecodeError::Truncated { field: "entries" })
        );
    }
}
