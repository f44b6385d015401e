//! The messages of the exchange (PROTOCOL.md 2.6): `u8 version ‖ u8 type ‖ payload`.
//! Encoding and decoding only; what a message means to each end lives in
//! [`super::phone`] and [`super::machine`].

use super::crypto::{HELLO_CONTEXT, RAW_SIGNATURE_LEN, TAG_LEN};
use super::grant::Grant;
use super::wire::{DecodeError, EncodeError, Reader, Writer};
use std::fmt;

pub const MESSAGE_VERSION: u8 = 1;

/// The `type` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Phone → machine: please send a fresh Hello.
    HelloRequest = 0,
    /// Machine → phone: the signed challenge.
    Hello = 1,
    /// Phone → machine: the encrypted, signed request.
    Request = 2,
    /// Machine → phone: the encrypted answer.
    Result = 3,
    /// Machine → phone: a plaintext refusal before the request could be decrypted.
    Error = 4,
}

impl MessageType {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::HelloRequest,
            1 => Self::Hello,
            2 => Self::Request,
            3 => Self::Result,
            4 => Self::Error,
            _ => return None,
        })
    }
}

/// Why a machine refused (the status codes of PROTOCOL.md 2.7 from 16 up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    Malformed = 16,
    StaleChallenge = 17,
    BadCiphertext = 18,
    UnknownGrant = 19,
    BadGrantSignature = 20,
    WrongMachine = 21,
    NotYetValid = 22,
    Expired = 23,
    Revoked = 24,
    BadSignature = 25,
    Unsupported = 26,
    BadRevocationList = 27,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 12] = [
        ReasonCode::Malformed,
        ReasonCode::StaleChallenge,
        ReasonCode::BadCiphertext,
        ReasonCode::UnknownGrant,
        ReasonCode::BadGrantSignature,
        ReasonCode::WrongMachine,
        ReasonCode::NotYetValid,
        ReasonCode::Expired,
        ReasonCode::Revoked,
        ReasonCode::BadSignature,
        ReasonCode::Unsupported,
        ReasonCode::BadRevocationList,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    fn meaning(self) -> &'static str {
        match self {
            ReasonCode::Malformed => "malformed message or frame",
            ReasonCode::StaleChallenge => "stale or unknown challenge",
            ReasonCode::BadCiphertext => "the request does not decrypt",
            ReasonCode::UnknownGrant => "the machine does not hold this grant: send the full grant",
            ReasonCode::BadGrantSignature => "the grant's issuer signature does not verify",
            ReasonCode::WrongMachine => "the grant does not name this machine",
            ReasonCode::NotYetValid => "the grant is not valid yet",
            ReasonCode::Expired => "the grant has expired",
            ReasonCode::Revoked => "the key was revoked or edited since this grant",
            ReasonCode::BadSignature => "the phone's signature does not verify",
            ReasonCode::Unsupported => "unsupported version or command",
            ReasonCode::BadRevocationList => "the revocation list's issuer signature does not verify",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.meaning(), self.code())
    }
}

/// The `status` of a Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Unlocked,
    Locked,
    Refused(ReasonCode),
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Unlocked => 0,
            Status::Locked => 1,
            Status::Refused(reason) => reason.code(),
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Status::Unlocked),
            1 => Some(Status::Locked),
            _ => ReasonCode::from_code(code).map(Status::Refused),
        }
    }
}

/// What the phone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Relay on: the machine may start.
    Unlock = 1,
    /// Relay off.
    Lock = 2,
}

impl Command {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Command::Unlock),
            2 => Some(Command::Lock),
            _ => None,
        }
    }
}

/// How the phone names its grant.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The key id only: the machine verified and cached this grant before (warm unlock).
    Cached { key_id: String },
    /// The whole signed grant (cold unlock).
    Full { grant_bytes: Vec<u8> },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Cached { key_id } => f.debug_struct("Cached").field("key_id", key_id).finish(),
            Credential::Full { grant_bytes } => write!(f, "Full({} bytes)", grant_bytes.len()),
        }
    }
}

fn header(message: &[u8]) -> Result<(MessageType, &[u8]), DecodeError> {
    let mut r = Reader::new(message);
    let version = r.u8("version")?;
    let code = r.u8("type")?;
    if version != MESSAGE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = MessageType::from_code(code).ok_or(DecodeError::UnknownMessageType(code))?;
    Ok((kind, r.rest()))
}

/// The type of a message, after checking its version.
pub fn message_type(message: &[u8]) -> Result<MessageType, DecodeError> {
    header(message).map(|(kind, _)| kind)
}

/// The payload of a message that must be of type `expected`.
fn payload(message: &[u8], expected: MessageType) -> Result<Reader<'_>, DecodeError> {
    let (kind, payload) = header(message)?;
    if kind != expected {
        return Err(DecodeError::WrongMessageType {
            expected: expected as u8,
            got: kind as u8,
        });
    }
    Ok(Reader::new(payload))
}

fn start(kind: MessageType) -> Writer {
    let mut w = Writer::new();
    w.u8(MESSAGE_VERSION).u8(kind as u8);
    w
}

/// Type `0x00`: the phone asks for a fresh Hello. Empty payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloRequest;

impl HelloRequest {
    pub fn encode(&self) -> Vec<u8> {
        start(MessageType::HelloRequest).into_bytes()
    }

    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        payload(message, MessageType::HelloRequest)?.finish()?;
        Ok(HelloRequest)
    }
}

/// Type `0x01`: the machine's signed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub machine_id: String,
    /// Fresh for this Hello; its private half is used once.
    pub machine_ephemeral_public_key: [u8; 65],
    /// The machine's clock (`max(rtc, floor)`), Unix seconds.
    pub machine_time: u64,
    /// The challenge expires at `machine_time + lifetime_s`.
    pub lifetime_s: u16,
    /// Persisted before sending; never repeats.
    pub hello_counter: u32,
    /// The sequence of the revocation list the machine holds (0: none).
    pub revocation_sequence: u32,
    /// The machine key's raw signature over `"opkey-hello-v1" ‖` the fields above.
    pub signature: [u8; RAW_SIGNATURE_LEN],
}

impl Hello {
    /// `"opkey-hello-v1" ‖` the encoded fields before the signature.
    pub fn signed_message(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.bytes(HELLO_CONTEXT);
        self.write_fields(&mut w)?;
        Ok(w.into_bytes())
    }

    fn write_fields(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.id(&self.machine_id, "machine_id")?;
        w.bytes(&self.machine_ephemeral_public_key)
            .time(self.machine_time, "machine_time")?
            .u16(self.lifetime_s)
            .u32(self.hello_counter)
            .u32(self.revocation_sequence);
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = start(MessageType::Hello);
        self.write_fields(&mut w)?;
        w.bytes(&self.signature);
        Ok(w.into_bytes())
    }

    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        let mut r = payload(message, MessageType::Hello)?;
        let hello = Hello {
            machine_id: r.id("machine_id")?,
            machine_ephemeral_public_key: r.public_key("machine_ephemeral_public_key")?,
            machine_time: r.time("machine_time")?,
            lifetime_s: r.u16("lifetime_s")?,
            hello_counter: r.u32("hello_counter")?,
            revocation_sequence: r.u32("revocation_sequence")?,
            signature: r.array("signature")?,
        };
        r.finish()?;
        Ok(hello)
    }

    /// The first second at which the challenge is stale.
    pub fn expires_at(&self) -> u64 {
        self.machine_time.saturating_add(u64::from(self.lifetime_s))
    }
}

/// Type `0x02`, as it travels: the phone's ephemeral key and the sealed plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub phone_ephemeral_public_key: [u8; 65],
    /// AES-256-GCM ciphertext ‖ 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = start(MessageType::Request);
        w.bytes(&self.phone_ephemeral_public_key).bytes(&self.ciphertext);
        w.into_bytes()
    }

    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        let mut r = payload(message, MessageType::Request)?;
        let phone_ephemeral_public_key = r.public_key("phone_ephemeral_public_key")?;
        let ciphertext = r.rest();
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Truncated { field: "ciphertext" });
        }
        Ok(Request {
            phone_ephemeral_public_key,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// The request's plaintext, once decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestPlaintext {
    pub command: Command,
    pub credential: Credential,
    /// A signed revocation list, when the phone holds a newer one than the machine.
    pub revocations: Option<Vec<u8>>,
    /// The phone key's raw signature over the request transcript.
    pub signature: [u8; RAW_SIGNATURE_LEN],
}

impl fmt::Debug for RequestPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestPlaintext")
            .field("command", &self.command)
            .field("credential", &self.credential)
            .field("revocations", &self.revocations.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// `kind` bits 0–3: the command.
const KIND_COMMAND_MASK: u8 = 0x0f;
/// `kind` bit 4: the credential is a full grant (else a cached grant's key id).
const KIND_FULL_GRANT: u8 = 0x10;

impl RequestPlaintext {
    /// `u8 kind ‖ credential ‖ [revocation list] ‖ [64] signature`: the grant delimits
    /// itself, and a list is whatever lies between the credential and the signature.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        match &self.credential {
            Credential::Cached { key_id } => {
                w.u8(self.command.code()).id(key_id, "key_id")?;
            }
            Credential::Full { grant_bytes } => {
                w.u8(self.command.code() | KIND_FULL_GRANT).bytes(grant_bytes);
            }
        }
        if let Some(list) = &self.revocations {
            if list.is_empty() {
                return Err(EncodeError::EmptyString { field: "revocations" });
            }
            w.bytes(list);
        }
        w.bytes(&self.signature);
        Ok(w.into_bytes())
    }

    pub fn decode(plaintext: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(plaintext);
        let kind = r.u8("kind")?;
        if kind & !(KIND_COMMAND_MASK | KIND_FULL_GRANT) != 0 {
            return Err(DecodeError::UnknownCredentialKind(kind));
        }
        let code = kind & KIND_COMMAND_MASK;
        let command = Command::from_code(code).ok_or(DecodeError::UnknownCommand(code))?;
        let credential = if kind & KIND_FULL_GRANT == 0 {
            Credential::Cached {
                key_id: r.id("key_id")?,
            }
        } else {
            let len = Grant::encoded_len(r.peek_rest())?;
            Credential::Full {
                grant_bytes: r.take(len, "grant")?.to_vec(),
            }
        };
        let list_len = r
            .remaining()
            .checked_sub(RAW_SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated { field: "signature" })?;
        let revocations = (list_len > 0).then(|| r.take(list_len, "revocations").map(<[u8]>::to_vec));
        let revocations = revocations.transpose()?;
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Self {
            command,
            credential,
            revocations,
            signature,
        })
    }
}

/// The Result's plaintext: `u8 status ‖ u16 relock_after_s ‖ u32 usage_session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultPlaintext {
    pub status: Status,
    /// Seconds until the machine locks itself again unless started (0 when not unlocked).
    pub relock_after_s: u16,
    /// The machine's usage session for this unlock or lock (0 when refused).
    pub usage_session: u32,
}

impl ResultPlaintext {
    pub const LEN: usize = 7;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.status.code();
        out[1..3].copy_from_slice(&self.relock_after_s.to_be_bytes());
        out[3..].copy_from_slice(&self.usage_session.to_be_bytes());
        out
    }

    pub fn decode(plaintext: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(plaintext);
        let status = r.u8("status")?;
        let result = Self {
            status: Status::from_code(status).ok_or(DecodeError::UnknownStatus(status))?,
            relock_after_s: r.u16("relock_after_s")?,
            usage_session: r.u32("usage_session")?,
        };
        r.finish()?;
        Ok(result)
    }
}

/// Type `0x03`: the sealed Result plaintext.
pub fn encode_result(ciphertext: &[u8]) -> Vec<u8> {
    let mut w = start(MessageType::Result);
    w.bytes(ciphertext);
    w.into_bytes()
}

/// The sealed bytes of a Result message.
pub fn decode_result(message: &[u8]) -> Result<&[u8], DecodeError> {
    let ciphertext = payload(message, MessageType::Result)?.rest();
    if ciphertext.len() < TAG_LEN {
        return Err(DecodeError::Truncated { field: "ciphertext" });
    }
    Ok(ciphertext)
}

/// Type `0x04`: a plaintext refusal, `u8 code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorMessage {
    pub code: ReasonCode,
}

impl ErrorMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = start(MessageType::Error);
        w.u8(self.code.code());
        w.into_bytes()
    }

    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        let mut r = payload(message, MessageType::Error)?;
        let code = r.u8("code")?;
        let code = ReasonCode::from_code(code).ok_or(DecodeError::UnknownStatus(code))?;
        r.finish()?;
        Ok(Self { code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        let mut key = [7u8; 65];
        key[0] = 4;
        Hello {
            machine_id: "mch_aaaaaaaaaaaaaaaa".into(),
            machine_ephemeral_public_key: key,
            machine_time: 1_700_000_000,
            lifetime_s: 10,
            hello_counter: 42,
            revocation_sequence: 3,
            signature: [9; 64],
        }
    }

    #[test]
    fn a_hello_round_trips_and_is_166_bytes_with_a_20_character_machine_id() {
        let bytes = hello().encode().unwrap();
        assert_eq!(bytes.len(), 166);
        assert_eq!(&bytes[..2], &[MESSAGE_VERSION, MessageType::Hello as u8]);
        assert_eq!(Hello::decode(&bytes), Ok(hello()));
        assert_eq!(message_type(&bytes), Ok(MessageType::Hello));
    }

    #[test]
    fn a_message_of_another_type_or_version_is_refused() {
        let bytes = hello().encode().unwrap();
        assert_eq!(
            ErrorMessage::decode(&bytes),
            Err(DecodeError::WrongMessageType { expected: 4, got: 1 })
        );
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(Hello::decode(&v2), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(message_type(&[1, 9]), Err(DecodeError::UnknownMessageType(9)));
        assert_eq!(message_type(&[1]), Err(DecodeError::Truncated { field: "type" }));
    }

    #[test]
    fn a_request_plaintext_round_trips_with_and_without_a_list() {
        use crate::ble::test_support::{Issuer, PhoneKey, grant_body};
        let grant = Issuer::new().grant(grant_body("key_1", &PhoneKey::new(), &["mch_1"], 10, 20));
        for revocations in [None, Some(vec![1, 2, 3])] {
            for credential in [
                Credential::Cached {
                    key_id: "key_1".into(),
                },
                Credential::Full {
                    grant_bytes: grant.as_bytes().to_vec(),
                },
            ] {
                let plain = RequestPlaintext {
                    command: Command::Lock,
                    credential,
                    revocations: revocations.clone(),
                    signature: [3; 64],
                };
                assert_eq!(RequestPlaintext::decode(&plain.encode().unwrap()), Ok(plain));
            }
        }
    }

    #[test]
    fn unknown_commands_and_credential_kinds_are_unsupported_not_malformed() {
        let plain = RequestPlaintext {
            command: Command::Unlock,
            credential: Credential::Cached { key_id: "k".into() },
            revocations: None,
            signature: [0; 64],
        };
        let mut bytes = plain.encode().unwrap();
        bytes[0] = 3;
        let err = RequestPlaintext::decode(&bytes).unwrap_err();
        assert_eq!(err, DecodeError::UnknownCommand(3));
        assert_eq!(err.reason(), ReasonCode::Unsupported);
        bytes[0] = 0x21;
        assert_eq!(
            RequestPlaintext::decode(&bytes),
            Err(DecodeError::UnknownCredentialKind(0x21))
        );
        bytes[0] = 0x11;
        assert_eq!(
            RequestPlaintext::decode(&bytes).map_err(DecodeError::reason),
            Err(ReasonCode::Malformed),
            "a full-grant flag before something that is not a grant"
        );
    }

    #[test]
    fn every_reason_code_says_what_it_means_and_round_trips() {
        for reason in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_code(reason.code()), Some(reason));
            assert_eq!(Status::from_code(reason.code()), Some(Status::Refused(reason)));
            assert!(reason.to_string().contains(&reason.code().to_string()));
        }
        assert_eq!(ReasonCode::StaleChallenge.code(), 17);
        assert_eq!(ReasonCode::BadSignature.code(), 25);
        assert_eq!(Status::from_code(0), Some(Status::Unlocked));
        assert_eq!(Status::from_code(2), None);
        assert_eq!(Status::from_code(28), None);
    }

    #[test]
    fn error_and_hello_request_messages_are_tiny() {
        let e = ErrorMessage {
            code: ReasonCode::StaleChallenge,
        }
        .encode();
        assert_eq!(e, [1, 4, 17]);
        assert_eq!(
            ErrorMessage::decode(&e),
            Ok(ErrorMessage {
                code: ReasonCode::StaleChallenge
            })
        );
        assert_eq!(HelloRequest.encode(), [1, 0]);
        assert_eq!(
            HelloRequest::decode(&[1, 0, 0]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}
