//! The phone end of the exchange (PROTOCOL.md 2.6), sans-IO: [`PhoneUnlock`] is fed the
//! machine's messages and the phone key's signature, and returns the bytes to send. The
//! phone key never enters this module: the caller's `Signer` (hardware on phones) signs
//! the transcript handed out by [`PhoneUnlock::on_hello`].
//!
//! Nothing is sent before the machine has proved itself: a fake machine learns nothing.

use super::ReasonCode;
use super::crypto::{
    REQUEST_CONTEXT, RESULT_CONTEXT, SessionKeys, TAG_LEN, derive_keys, ephemeral_key, open,
    request_transcript, seal, verify_raw,
};
use super::frame::MAX_MESSAGE_LEN;
use super::grant::{Grant, GrantError};
use super::messages::{
    Command, Credential, ErrorMessage, Hello, HelloRequest, MessageType, Request, RequestPlaintext,
    ResultPlaintext, Status, decode_result, message_type,
};
use super::revocation::RevocationList;
use super::wire::{DecodeError, EncodeError};
use crate::auth::check_public_key_shape;
use ring::aead::LessSafeKey;
use ring::rand::SecureRandom;
use std::fmt;
use time::OffsetDateTime;

/// What the phone wants to do, and with which credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneUnlockParams {
    /// The machine the operator chose.
    pub machine_id: String,
    /// Its public key, from sync (SEC1 uncompressed).
    pub machine_public_key: Vec<u8>,
    pub command: Command,
    pub credential: Credential,
    /// The newest signed revocation list the phone holds for this machine.
    pub revocations: Option<Vec<u8>>,
}

/// Sign `transcript` with the phone key (ECDSA P-256 SHA-256), then call
/// [`PhoneUnlock::on_signature`] with the raw `r ‖ s` form (see [`super::der_to_raw`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureNeeded {
    pub transcript: Vec<u8>,
}

/// How the machine answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// The relay is on; the machine locks itself again after `relock_after_s` unless started.
    Unlocked { relock_after_s: u16, usage_session: u32 },
    /// The relay is off.
    Locked { usage_session: u32 },
    /// The machine refused; the relay is as it was.
    Denied(ReasonCode),
    /// The machine does not hold this grant: send a `HelloRequest` and retry with
    /// [`Credential::Full`].
    UnknownGrant,
}

/// Why the phone stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    #[error("the machine public key is not a P-256 point (65-byte SEC1 uncompressed)")]
    BadMachinePublicKey,
    #[error("the grant to send is malformed: {0}")]
    BadGrant(DecodeError),
    #[error("the grant cannot open this machine now: {0}")]
    GrantUnusable(GrantError),
    #[error("the revocation list to carry is malformed: {0}")]
    BadRevocations(DecodeError),
    #[error("the revocation list to carry is for another machine")]
    RevocationsForAnotherMachine,
    #[error("a field cannot be encoded: {0}")]
    Encode(EncodeError),
    #[error("the machine answered with a message that cannot be read: {0}")]
    Decode(DecodeError),
    #[error("expected a {expected:?} message, got {got:?}")]
    UnexpectedMessage { expected: MessageType, got: MessageType },
    #[error("the machine that answered is not the machine that was chosen")]
    WrongMachine,
    #[error("the Hello is not signed by the chosen machine's key")]
    FakeMachine,
    #[error("the machine's challenge has already expired")]
    ExpiredHello,
    #[error("the machine's ephemeral key is not a P-256 point")]
    BadMachineEphemeralKey,
    #[error("the random number generator failed")]
    Rng,
    #[error("the signature is not by the phone key the grant names")]
    SignatureByAnotherKey,
    #[error("the request would be {len} bytes; at most 1024 fit")]
    RequestTooLarge { len: usize },
    #[error("the Result does not decrypt: it is not from the machine that sent the Hello")]
    BadResultCiphertext,
    #[error("the machine reported {status:?} for a {command:?} command")]
    ResultDoesNotMatchCommand { command: Command, status: Status },
    #[error("this step was called out of turn")]
    OutOfTurn,
}

enum Phase {
    AwaitingHello,
    AwaitingSignature {
        keys: Box<SessionKeys>,
        phone_ephemeral_public_key: [u8; 65],
        transcript: Vec<u8>,
        carry_revocations: bool,
    },
    AwaitingResult {
        result_key: Box<LessSafeKey>,
    },
    Finished,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::AwaitingHello => "awaiting Hello",
            Phase::AwaitingSignature { .. } => "awaiting signature",
            Phase::AwaitingResult { .. } => "awaiting Result",
            Phase::Finished => "finished",
        }
    }
}

/// One unlock or lock, from the machine's Hello to its Result. Single use: any error
/// ends it; start a new one (after a `HelloRequest`) to retry.
pub struct PhoneUnlock {
    params: PhoneUnlockParams,
    key_id: String,
    grant: Option<Grant>,
    revocations: Option<RevocationList>,
    phase: Phase,
}

impl fmt::Debug for PhoneUnlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneUnlock")
            .field("machine_id", &self.params.machine_id)
            .field("command", &self.params.command)
            .field("key_id", &self.key_id)
            .field("phase", &self.phase.name())
            .finish_non_exhaustive()
    }
}

impl PhoneUnlock {
    /// Checks what the phone is about to send. `now` is the phone's server-corrected time:
    /// a full grant that does not name the machine or is outside its window at `now` is
    /// refused here, before any radio traffic.
    pub fn new(params: PhoneUnlockParams, now: OffsetDateTime) -> Result<Self, UnlockError> {
        check_public_key_shape(&params.machine_public_key).map_err(|_| UnlockError::BadMachinePublicKey)?;
        let (key_id, grant) = match &params.credential {
            Credential::Cached { key_id } => (key_id.clone(), None),
            Credential::Full { grant_bytes } => {
                let grant = Grant::decode(grant_bytes).map_err(UnlockError::BadGrant)?;
                if !grant.covers(&params.machine_id) {
                    return Err(UnlockError::GrantUnusable(GrantError::WrongMachine));
                }
                grant.check_time_at(now).map_err(UnlockError::GrantUnusable)?;
                (grant.key_id().to_owned(), Some(grant))
            }
        };
        let revocations = match &params.revocations {
            None => None,
            Some(bytes) => {
                let list = RevocationList::decode(bytes).map_err(UnlockError::BadRevocations)?;
                if list.machine_id() != params.machine_id {
                    return Err(UnlockError::RevocationsForAnotherMachine);
                }
                Some(list)
            }
        };
        Ok(Self {
            params,
            key_id,
            grant,
            revocations,
            phase: Phase::AwaitingHello,
        })
    }

    /// The message that asks a connected machine for a fresh Hello.
    pub fn hello_request() -> Vec<u8> {
        HelloRequest.encode()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks the machine's Hello and derives the keys; returns what the phone key must sign.
    pub fn on_hello(
        &mut self,
        message: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<SignatureNeeded, UnlockError> {
        if !matches!(self.phase, Phase::AwaitingHello) {
            return Err(UnlockError::OutOfTurn);
        }
        let result = self.accept_hello(message, rng);
        if result.is_err() {
            self.phase = Phase::Finished;
        }
        result
    }

    fn accept_hello(
        &mut self,
        message: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<SignatureNeeded, UnlockError> {
        expect(message, MessageType::Hello)?;
        let hello = Hello::decode(message).map_err(UnlockError::Decode)?;
        if hello.machine_id != self.params.machine_id {
            return Err(UnlockError::WrongMachine);
        }
        let signed = hello.signed_message().map_err(UnlockError::Encode)?;
        if !verify_raw(&self.params.machine_public_key, &signed, &hello.signature) {
            return Err(UnlockError::FakeMachine);
        }
        if hello.lifetime_s == 0 {
            return Err(UnlockError::ExpiredHello);
        }
        let (private_key, phone_ephemeral_public_key) = ephemeral_key(rng).map_err(|_| UnlockError::Rng)?;
        let keys = derive_keys(
            private_key,
            &hello.machine_ephemeral_public_key,
            message,
            &phone_ephemeral_public_key,
        )
        .map_err(|_| UnlockError::BadMachineEphemeralKey)?;
        let transcript = request_transcript(
            message,
            &phone_ephemeral_public_key,
            self.params.command.code(),
            &self.key_id,
        )
        .map_err(UnlockError::Encode)?;
        let carry_revocations = self
            .revocations
            .as_ref()
            .is_some_and(|list| list.sequence() > hello.revocation_sequence);
        self.phase = Phase::AwaitingSignature {
            keys: Box::new(keys),
            phone_ephemeral_public_key,
            transcript: transcript.clone(),
            carry_revocations,
        };
        Ok(SignatureNeeded { transcript })
    }

    /// Seals the request with the phone key's raw signature; returns the Request message.
    /// The revocation list rides along when the machine's is older and it fits.
    pub fn on_signature(&mut self, raw_signature: [u8; 64]) -> Result<Vec<u8>, UnlockError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let Phase::AwaitingSignature {
            keys,
            phone_ephemeral_public_key,
            transcript,
            carry_revocations,
        } = phase
        else {
            self.phase = phase;
            return Err(UnlockError::OutOfTurn);
        };
        if let Some(grant) = &self.grant
            && !verify_raw(&grant.body().phone_public_key, &transcript, &raw_signature)
        {
            return Err(UnlockError::SignatureByAnotherKey);
        }
        let mut plaintext = RequestPlaintext {
            command: self.params.command,
            credential: self.params.credential.clone(),
            revocations: None,
            signature: raw_signature,
        };
        let envelope = 2 + 65 + TAG_LEN;
        if carry_revocations {
            plaintext.revocations = self.revocations.as_ref().map(|l| l.as_bytes().to_vec());
            let len = envelope + plaintext.encode().map_err(UnlockError::Encode)?.len();
            if len > MAX_MESSAGE_LEN {
                plaintext.revocations = None;
            }
        }
        let plaintext = plaintext.encode().map_err(UnlockError::Encode)?;
        let len = envelope + plaintext.len();
        if len > MAX_MESSAGE_LEN {
            return Err(UnlockError::RequestTooLarge { len });
        }
        let request = Request {
            phone_ephemeral_public_key,
            ciphertext: seal(&keys.request, REQUEST_CONTEXT, &plaintext),
        };
        self.phase = Phase::AwaitingResult {
            result_key: Box::new(keys.result),
        };
        Ok(request.encode())
    }

    /// Reads the machine's answer: a Result (trusted: only the machine that signed the
    /// Hello can seal it) or an Error (a refusal before decryption).
    pub fn on_result(&mut self, message: &[u8]) -> Result<UnlockOutcome, UnlockError> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        let Phase::AwaitingResult { result_key } = phase else {
            self.phase = phase;
            return Err(UnlockError::OutOfTurn);
        };
        let kind = message_type(message).map_err(UnlockError::Decode)?;
        let status = match kind {
            MessageType::Error => {
                let error = ErrorMessage::decode(message).map_err(UnlockError::Decode)?;
                return Ok(refused(error.code));
            }
            MessageType::Result => {
                let sealed = decode_result(message).map_err(UnlockError::Decode)?;
                let plaintext =
                    open(&result_key, RESULT_CONTEXT, sealed).ok_or(UnlockError::BadResultCiphertext)?;
                ResultPlaintext::decode(&plaintext).map_err(UnlockError::Decode)?
            }
            got => {
                return Err(UnlockError::UnexpectedMessage {
                    expected: MessageType::Result,
                    got,
                });
            }
        };
        let command = self.params.command;
        match (status.status, command) {
            (Status::Unlocked, Command::Unlock) => Ok(UnlockOutcome::Unlocked {
                relock_after_s: status.relock_after_s,
                usage_session: status.usage_session,
            }),
            (Status::Locked, Command::Lock) => Ok(UnlockOutcome::Locked {
                usage_session: status.usage_session,
            }),
            (Status::Refused(reason), _) => Ok(refused(reason)),
            (status, command) => Err(UnlockError::ResultDoesNotMatchCommand { command, status }),
        }
    }
}

fn refused(reason: ReasonCode) -> UnlockOutcome {
    match reason {
        ReasonCode::UnknownGrant => UnlockOutcome::UnknownGrant,
        reason => UnlockOutcome::Denied(reason),
    }
}

fn expect(message: &[u8], expected: MessageType) -> Result<(), UnlockError> {
    match message_type(message).map_err(UnlockError::Decode)? {
        got if got == expected => Ok(()),
        got => Err(UnlockError::UnexpectedMessage { expected, got }),
    }
}
