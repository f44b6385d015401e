//! The byte-level grammar of PROTOCOL.md Part 2: big-endian integers, `str` (a `u8` length
//! then at most 64 bytes of UTF-8), fixed-size byte arrays. Every decoder in [`crate::ble`]
//! reads through [`Reader`], so a short, oversize or malformed input is always a typed
//! [`DecodeError`] and never a panic.

use super::ReasonCode;

/// The longest `str` on the wire, in bytes.
pub const MAX_STR_LEN: usize = 64;

/// Why bytes could not be read as a message, a grant or a revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the input ends inside `{field}`")]
    Truncated { field: &'static str },
    #[error("`{field}` is {len} bytes long; a wire string holds at most 64")]
    StringTooLong { field: &'static str, len: usize },
    #[error("`{field}` is empty")]
    EmptyString { field: &'static str },
    #[error("`{field}` is not valid UTF-8")]
    BadUtf8 { field: &'static str },
    #[error("{count} bytes follow the end of the structure")]
    TrailingBytes { count: usize },
    #[error("`{field}` is not a SEC1 uncompressed P-256 point")]
    BadPublicKey { field: &'static str },
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    #[error("a message of type {got} arrived where type {expected} was expected")]
    WrongMessageType { expected: u8, got: u8 },
    #[error("unknown command {0}")]
    UnknownCommand(u8),
    #[error("unknown credential kind {0}")]
    UnknownCredentialKind(u8),
    #[error("unknown status or reason code {0}")]
    UnknownStatus(u8),
    #[error("`{field}` holds {value}, which is not allowed")]
    BadValue { field: &'static str, value: u64 },
    #[error("a grant must name at least one machine")]
    NoMachines,
}

impl DecodeError {
    /// The reason code a machine answers with when it cannot read what it received.
    pub fn reason(self) -> ReasonCode {
        match self {
            DecodeError::UnsupportedVersion(_)
            | DecodeError::UnknownMessageType(_)
            | DecodeError::UnknownCommand(_)
            | DecodeError::UnknownCredentialKind(_) => ReasonCode::Unsupported,
            _ => ReasonCode::Malformed,
        }
    }
}

/// Why a structure could not be written: a field that the wire cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("`{field}` is {len} bytes long; a wire string holds at most 64")]
    StringTooLong { field: &'static str, len: usize },
    #[error("`{field}` is empty")]
    EmptyString { field: &'static str },
    #[error("`{field}` holds {count} items; at most {max} fit")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("a grant must name at least one machine")]
    NoMachines,
    #[error("`{field}` is {value}; wire times are u32 Unix seconds (up to 2106-02-07)")]
    TimeOutOfRange { field: &'static str, value: u64 },
}

/// Reads the grammar's primitives from a byte slice, front to back.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A `str`: `u8` length, at most 64 bytes of UTF-8 (may be empty).
    pub(crate) fn str(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u8(field)?);
        if len > MAX_STR_LEN {
            return Err(DecodeError::StringTooLong { field, len });
        }
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8 { field })
    }

    /// A `str` that must not be empty (identifiers).
    pub(crate) fn id(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let s = self.str(field)?;
        if s.is_empty() {
            return Err(DecodeError::EmptyString { field });
        }
        Ok(s)
    }

    /// A 65-byte SEC1 uncompressed point (shape only; the curve check happens when used).
    pub(crate) fn public_key(&mut self, field: &'static str) -> Result<[u8; 65], DecodeError> {
        let key: [u8; 65] = self.array(field)?;
        if key[0] != 0x04 {
            return Err(DecodeError::BadPublicKey { field });
        }
        Ok(key)
    }

    /// Everything left, without consuming it.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// A time: `u32` Unix seconds.
    pub(crate) fn time(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.u32(field).map(u64::from)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// Succeeds only when every byte was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

/// Writes the grammar's primitives.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A time as `u32` Unix seconds; later than 2106 cannot be written.
    pub(crate) fn time(&mut self, v: u64, field: &'static str) -> Result<&mut Self, EncodeError> {
        let v = u32::try_from(v).map_err(|_| EncodeError::TimeOutOfRange { field, value: v })?;
        Ok(self.u32(v))
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }

    /// A `str`; refuses anything longer than 64 bytes.
    pub(crate) fn str(&mut self, v: &str, field: &'static str) -> Result<&mut Self, EncodeError> {
        let len = v.len();
        if len > MAX_STR_LEN {
            return Err(EncodeError::StringTooLong { field, len });
        }
        self.bytes.push(len as u8);
        self.bytes.extend_from_slice(v.as_bytes());
        Ok(self)
    }

    /// A non-empty `str` (identifiers).
    pub(crate) fn id(&mut self, v: &str, field: &'static str) -> Result<&mut Self, EncodeError> {
        if v.is_empty() {
            return Err(EncodeError::EmptyString { field });
        }
        self.str(v, field)
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Serde helpers: byte strings persisted as base64url text, the way every binary value in
/// OpKey's JSON looks.
pub(crate) mod b64_serde {
    use crate::encoding::{b64, unb64};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        unb64(&text).ok_or_else(|| serde::de::Error::custom("not base64url without padding"))
    }

    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(b) => s.serialize_some(&b64(b)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => unb64(&text)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("not base64url without padding")),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_strings_carry_their_length() {
        let mut w = Writer::new();
        w.u8(1).u16(0x0203).u32(0x0405_0607).time(8, "d").unwrap();
        w.str("mch", "machine_id").unwrap();
        let bytes = w.into_bytes();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 8, 3, b'm', b'c', b'h']);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16("b"), Ok(0x0203));
        assert_eq!(r.u32("c"), Ok(0x0405_0607));
        assert_eq!(r.time("d"), Ok(8));
        assert_eq!(r.str("machine_id").as_deref(), Ok("mch"));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn a_time_after_2106_cannot_be_written() {
        let too_late = u64::from(u32::MAX) + 1;
        assert_eq!(
            Writer::new().time(too_late, "valid_to").err(),
            Some(EncodeError::TimeOutOfRange {
                field: "valid_to",
                value: too_late
            })
        );
        assert!(Writer::new().time(u64::from(u32::MAX), "valid_to").is_ok());
    }

    #[test]
    fn a_string_longer_than_64_bytes_is_refused_both_ways() {
        let long = "x".repeat(65);
        assert_eq!(
            Writer::new().str(&long, "key_id").err(),
            Some(EncodeError::StringTooLong {
                field: "key_id",
                len: 65
            })
        );
        let mut bytes = vec![65u8];
        bytes.extend_from_slice(long.as_bytes());
        assert_eq!(
            Reader::new(&bytes).str("key_id"),
            Err(DecodeError::StringTooLong {
                field: "key_id",
                len: 65
            })
        );
    }

    #[test]
    fn short_input_bad_utf8_and_leftovers_are_typed_errors() {
        assert_eq!(
            Reader::new(&[0, 1]).u32("serial"),
            Err(DecodeError::Truncated { field: "serial" })
        );
        assert_eq!(
            Reader::new(&[2, 0xff, 0xfe]).str("key_id"),
            Err(DecodeError::BadUtf8 { field: "key_id" })
        );
        assert_eq!(
            Reader::new(&[3, b'a']).str("key_id"),
            Err(DecodeError::Truncated { field: "key_id" })
        );
        assert_eq!(
            Reader::new(&[0]).id("key_id"),
            Err(DecodeError::EmptyString { field: "key_id" })
        );
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("version").unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 2 }));
    }
}
