//! The machine end of the exchange (PROTOCOL.md 2.6–2.8), sans-IO: [`MachineVerifier`] is
//! fed messages and the RTC reading, and returns the bytes to send and what to do with the
//! relay. It never touches a radio, a relay, a clock or a disk: the caller persists
//! [`MachineState`] whenever a call says `persist`, **before** sending the reply or acting
//! on the decision, so counters, the clock floor, the revocation list and the grant cache
//! never roll back.

use super::ReasonCode;
use super::crypto::{
    REQUEST_CONTEXT, RESULT_CONTEXT, SignError, derive_keys, ephemeral_key, open, request_transcript, seal,
    sign_raw, verify_raw,
};
use super::frame::FrameError;
use super::grant::{Grant, GrantError};
use super::messages::{
    Command, Credential, ErrorMessage, Hello, HelloRequest, MessageType, Request, RequestPlaintext,
    ResultPlaintext, Status, encode_result, message_type,
};
use super::revocation::RevocationList;
use super::wire::{DecodeError, EncodeError, MAX_STR_LEN, b64_serde};
use crate::auth::check_public_key_shape;
use ring::agreement::EphemeralPrivateKey;
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

pub const DEFAULT_CHALLENGE_LIFETIME_S: u16 = 10;
pub const DEFAULT_RELOCK_AFTER_S: u16 = 120;
/// Grants a machine remembers; the least recently used leaves first.
pub const GRANT_CACHE_CAPACITY: usize = 1024;

/// What a machine is provisioned with.
pub struct MachineConfig {
    pub machine_id: String,
    /// The machine's long-term P-256 key, PKCS#8.
    pub machine_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The backend's grant-signing key, SEC1 uncompressed.
    pub issuer_public_key: Vec<u8>,
    pub challenge_lifetime_s: u16,
    pub relock_after_s: u16,
}

impl MachineConfig {
    /// A configuration with the default challenge lifetime (10 s) and auto-relock (120 s).
    pub fn new(
        machine_id: impl Into<String>,
        machine_key_pkcs8: Zeroizing<Vec<u8>>,
        issuer_public_key: Vec<u8>,
    ) -> Self {
        Self {
            machine_id: machine_id.into(),
            machine_key_pkcs8,
            issuer_public_key,
            challenge_lifetime_s: DEFAULT_CHALLENGE_LIFETIME_S,
            relock_after_s: DEFAULT_RELOCK_AFTER_S,
        }
    }
}

impl fmt::Debug for MachineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineConfig")
            .field("machine_id", &self.machine_id)
            .field("machine_key_pkcs8", &"<redacted>")
            .field("challenge_lifetime_s", &self.challenge_lifetime_s)
            .field("relock_after_s", &self.relock_after_s)
            .finish_non_exhaustive()
    }
}

/// A grant the machine verified, kept so the next unlock can name it by key id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedGrant {
    #[serde(with = "b64_serde")]
    pub grant: Vec<u8>,
    /// Machine time of the last use, for least-recently-used eviction.
    pub last_used: u64,
}

impl fmt::Debug for CachedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CachedGrant({} bytes, last used {})",
            self.grant.len(),
            self.last_used
        )
    }
}

/// Everything a machine must keep across restarts. None of it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    /// The clock never reads earlier than this (the latest verified `issued_at`).
    pub clock_floor: u64,
    /// The counter of the last Hello sent.
    pub hello_counter: u32,
    /// The highest revocation list held, as signed by the issuer.
    #[serde(default, with = "b64_serde::option")]
    pub revocations: Option<Vec<u8>>,
    /// Its sequence (0: none).
    pub revocation_sequence: u32,
    /// key id → grant.
    pub grant_cache: BTreeMap<String, CachedGrant>,
    /// The usage session the next unlock or lock records.
    pub next_usage_session: u32,
}

impl Default for MachineState {
    fn default() -> Self {
        Self {
            clock_floor: 0,
            hello_counter: 0,
            revocations: None,
            revocation_sequence: 0,
            grant_cache: BTreeMap::new(),
            next_usage_session: 1,
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("the machine key is not a P-256 PKCS#8 key")]
    BadMachineKey,
    #[error("the issuer public key is not a P-256 point (65-byte SEC1 uncompressed)")]
    BadIssuerKey,
    #[error("the machine id must be 1 to 64 bytes")]
    BadMachineId,
    #[error("the stored revocation list does not decode or verify, or is for another machine")]
    CorruptRevocations,
}

/// Why a Hello could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("the hello counter is exhausted; the machine must be re-provisioned")]
    CounterExhausted,
    #[error("the random number generator failed")]
    Rng,
    #[error("signing the Hello failed")]
    Sign(#[from] SignError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Why a revocation list was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevocationListError {
    #[error("malformed revocation list: {0}")]
    Malformed(DecodeError),
    #[error("the revocation list's issuer signature does not verify")]
    BadSignature,
}

impl RevocationListError {
    fn reason(self) -> ReasonCode {
        match self {
            RevocationListError::Malformed(e) => e.reason(),
            RevocationListError::BadSignature => ReasonCode::BadRevocationList,
        }
    }
}

/// A message for the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub message: Vec<u8>,
    /// Persist [`MachineVerifier::state`] before sending.
    pub persist: bool,
}

/// What a list did to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationUpdate {
    /// True when the list replaced the one held (its sequence was higher).
    pub kept: bool,
    /// Persist [`MachineVerifier::state`] now.
    pub persist: bool,
}

/// What the machine must do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Relay on; lock again after `relock_after_s` unless the engine starts.
    Unlocked {
        key_id: String,
        operator_id: String,
        personal: bool,
        usage_session: u32,
        relock_after_s: u16,
    },
    /// Relay off.
    Locked {
        key_id: String,
        operator_id: String,
        personal: bool,
        usage_session: u32,
    },
    /// Relay untouched.
    Denied(ReasonCode),
    /// The phone asked for a fresh challenge: call [`MachineVerifier::hello`] and send it.
    NeedsHello,
}

/// The answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The Result or Error message to send (empty for [`Decision::NeedsHello`]).
    pub reply: Vec<u8>,
    pub decision: Decision,
    /// Persist [`MachineVerifier::state`] before sending the reply or touching the relay.
    pub persist: bool,
}

struct Challenge {
    hello: Vec<u8>,
    private_key: EphemeralPrivateKey,
    machine_time: u64,
    expires_at: u64,
}

/// The machine's side of the unlock. One outstanding challenge at a time; every message
/// but a HelloRequest consumes it, whatever happens next.
pub struct MachineVerifier {
    machine_id: String,
    key: EcdsaKeyPair,
    issuer_public_key: Vec<u8>,
    challenge_lifetime_s: u16,
    relock_after_s: u16,
    state: MachineState,
    revocations: Option<RevocationList>,
    challenge: Option<Challenge>,
}

impl fmt::Debug for MachineVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineVerifier")
            .field("machine_id", &self.machine_id)
            .field("state", &self.state)
            .field("challenge_outstanding", &self.challenge.is_some())
            .finish_non_exhaustive()
    }
}

impl MachineVerifier {
    /// A verifier from provisioning data and the last persisted state.
    pub fn new(
        config: MachineConfig,
        state: MachineState,
        rng: &dyn SecureRandom,
    ) -> Result<Self, SetupError> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &config.machine_key_pkcs8, rng)
            .map_err(|_| SetupError::BadMachineKey)?;
        check_public_key_shape(&config.issuer_public_key).map_err(|_| SetupError::BadIssuerKey)?;
        if config.machine_id.is_empty() || config.machine_id.len() > MAX_STR_LEN {
            return Err(SetupError::BadMachineId);
        }
        let revocations = match &state.revocations {
            None => None,
            Some(bytes) => {
                let list = RevocationList::decode(bytes).map_err(|_| SetupError::CorruptRevocations)?;
                list.verify(&config.issuer_public_key)
                    .map_err(|_| SetupError::CorruptRevocations)?;
                if list.machine_id() != config.machine_id || list.sequence() != state.revocation_sequence {
                    return Err(SetupError::CorruptRevocations);
                }
                Some(list)
            }
        };
        Ok(Self {
            machine_id: config.machine_id,
            key,
            issuer_public_key: config.issuer_public_key,
            challenge_lifetime_s: config.challenge_lifetime_s,
            relock_after_s: config.relock_after_s,
            state,
            revocations,
            challenge: None,
        })
    }

    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    /// The machine's public key (SEC1 uncompressed), as registered with the backend.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// What to persist.
    pub fn state(&self) -> &MachineState {
        &self.state
    }

    /// The machine's clock: `max(rtc, floor)`.
    pub fn now(&self, rtc_now: u64) -> u64 {
        rtc_now.max(self.state.clock_floor)
    }

    /// True while a Hello waits for its request.
    pub fn challenge_outstanding(&self) -> bool {
        self.challenge.is_some()
    }

    /// A fresh signed Hello, replacing any outstanding one. Persist before sending: the
    /// counter must never repeat.
    pub fn hello(&mut self, rtc_now: u64, rng: &dyn SecureRandom) -> Result<Outgoing, HelloError> {
        let counter = self
            .state
            .hello_counter
            .checked_add(1)
            .ok_or(HelloError::CounterExhausted)?;
        let (private_key, public_key) = ephemeral_key(rng).map_err(|_| HelloError::Rng)?;
        let now = self.now(rtc_now);
        let mut hello = Hello {
            machine_id: self.machine_id.clone(),
            machine_ephemeral_public_key: public_key,
            machine_time: now,
            lifetime_s: self.challenge_lifetime_s,
            hello_counter: counter,
            revocation_sequence: self.state.revocation_sequence,
            signature: [0; 64],
        };
        hello.signature = sign_raw(&self.key, rng, &hello.signed_message()?)?;
        let message = hello.encode()?;
        self.state.hello_counter = counter;
        self.challenge = Some(Challenge {
            hello: message.clone(),
            private_key,
            machine_time: now,
            expires_at: hello.expires_at(),
        });
        Ok(Outgoing {
            message,
            persist: true,
        })
    }

    /// The phone went away: the outstanding challenge dies with the connection.
    pub fn disconnected(&mut self) {
        self.challenge = None;
    }

    /// The transport could not reassemble a message: answer `Malformed` and drop the
    /// challenge.
    pub fn frame_error(&mut self, _error: FrameError) -> Outcome {
        self.challenge = None;
        refusal(ReasonCode::Malformed)
    }

    /// Accepts a revocation list from any courier (the backend, or a phone): it must verify;
    /// it is kept when its sequence is higher than the one held and it is for this machine.
    pub fn apply_revocations(&mut self, list: &[u8]) -> Result<RevocationUpdate, RevocationListError> {
        let mut persist = false;
        let kept = self.accept_revocations(list, &mut persist)?;
        Ok(RevocationUpdate { kept, persist })
    }

    fn accept_revocations(&mut self, bytes: &[u8], persist: &mut bool) -> Result<bool, RevocationListError> {
        let list = RevocationList::decode(bytes).map_err(RevocationListError::Malformed)?;
        list.verify(&self.issuer_public_key)
            .map_err(|_| RevocationListError::BadSignature)?;
        self.raise_floor(list.issued_at(), persist);
        if list.machine_id() != self.machine_id || list.sequence() <= self.state.revocation_sequence {
            return Ok(false);
        }
        self.state.revocations = Some(bytes.to_vec());
        self.state.revocation_sequence = list.sequence();
        self.revocations = Some(list);
        *persist = true;
        Ok(true)
    }

    fn raise_floor(&mut self, verified_time: u64, persist: &mut bool) {
        if verified_time > self.state.clock_floor {
            self.state.clock_floor = verified_time;
            *persist = true;
        }
    }

    /// Handles one reassembled message from the phone (PROTOCOL.md 2.7, in order).
    pub fn handle(&mut self, message: &[u8], rtc_now: u64) -> Outcome {
        // 1. Whatever arrives consumes the outstanding challenge.
        let challenge = self.challenge.take();
        match message_type(message) {
            Ok(MessageType::HelloRequest) => {
                return match HelloRequest::decode(message) {
                    Ok(_) => Outcome {
                        reply: Vec::new(),
                        decision: Decision::NeedsHello,
                        persist: false,
                    },
                    Err(e) => refusal(e.reason()),
                };
            }
            Ok(MessageType::Request) => {}
            Ok(_) => return refusal(ReasonCode::Malformed),
            Err(e) => return refusal(e.reason()),
        }
        let Some(challenge) = challenge else {
            return refusal(ReasonCode::StaleChallenge);
        };
        let now = self.now(rtc_now);
        // A clock that went backwards since the Hello cannot judge its age: refuse.
        if now < challenge.machine_time || now >= challenge.expires_at {
            return refusal(ReasonCode::StaleChallenge);
        }
        let request = match Request::decode(message) {
            Ok(r) => r,
            Err(e) => return refusal(e.reason()),
        };

        // 2. Decrypt.
        let phone_key = request.phone_ephemeral_public_key;
        let Ok(keys) = derive_keys(challenge.private_key, &phone_key, &challenge.hello, &phone_key) else {
            return refusal(ReasonCode::BadCiphertext);
        };
        let Some(plaintext) = open(&keys.request, REQUEST_CONTEXT, &request.ciphertext) else {
            return refusal(ReasonCode::BadCiphertext);
        };

        // 3–7, answered with an encrypted Result from here on.
        let mut persist = false;
        let (decision, result) =
            match self.decide(&plaintext, rtc_now, &challenge.hello, &phone_key, &mut persist) {
                Ok(executed) => executed.into_decision(self.relock_after_s),
                Err(reason) => (
                    Decision::Denied(reason),
                    ResultPlaintext {
                        status: Status::Refused(reason),
                        relock_after_s: 0,
                        usage_session: 0,
                    },
                ),
            };
        Outcome {
            reply: encode_result(&seal(&keys.result, RESULT_CONTEXT, &result.encode())),
            decision,
            persist,
        }
    }

    fn decide(
        &mut self,
        plaintext: &[u8],
        rtc_now: u64,
        hello: &[u8],
        phone_ephemeral_public_key: &[u8; 65],
        persist: &mut bool,
    ) -> Result<Executed, ReasonCode> {
        let request = RequestPlaintext::decode(plaintext).map_err(DecodeError::reason)?;

        // 3. A carried revocation list.
        if let Some(list) = &request.revocations {
            self.accept_revocations(list, persist)
                .map_err(RevocationListError::reason)?;
        }

        // 4. The credential.
        let (grant, cached) = match &request.credential {
            Credential::Cached { key_id } => {
                let cached = self
                    .state
                    .grant_cache
                    .get(key_id)
                    .ok_or(ReasonCode::UnknownGrant)?;
                match Grant::decode(&cached.grant) {
                    Ok(grant) => (grant, true),
                    Err(_) => {
                        self.state.grant_cache.remove(key_id);
                        *persist = true;
                        return Err(ReasonCode::UnknownGrant);
                    }
                }
            }
            Credential::Full { grant_bytes } => {
                let grant = Grant::decode(grant_bytes).map_err(DecodeError::reason)?;
                grant
                    .verify(&self.issuer_public_key)
                    .map_err(GrantError::reason)?;
                self.raise_floor(grant.body().issued_at, persist);
                (grant, false)
            }
        };

        // 5. Scope, time, revocation, at the clock the signed data just moved.
        let now = self.now(rtc_now);
        if let Err(e) = self.check_grant(&grant, now) {
            if cached && matches!(e, GrantError::Expired | GrantError::Revoked) {
                // A cached grant that expired or was superseded is forgotten. The phone may
                // hold a renewed or edited grant: ask for it, unless no version of this key
                // can ever pass.
                self.state.grant_cache.remove(grant.key_id());
                *persist = true;
                let entirely = self
                    .revocations
                    .as_ref()
                    .is_some_and(|l| l.revokes_entirely(grant.key_id()));
                if !entirely {
                    return Err(ReasonCode::UnknownGrant);
                }
            }
            return Err(e.reason());
        }
        if !cached {
            self.cache(&grant, now);
            *persist = true;
        }

        // 6. The phone's signature over this challenge, command and key.
        let transcript = request_transcript(
            hello,
            phone_ephemeral_public_key,
            request.command.code(),
            grant.key_id(),
        )
        .map_err(|_| ReasonCode::Malformed)?;
        if !verify_raw(&grant.body().phone_public_key, &transcript, &request.signature) {
            return Err(ReasonCode::BadSignature);
        }

        // 7. Execute.
        let usage_session = self.state.next_usage_session;
        self.state.next_usage_session = usage_session.checked_add(1).unwrap_or(1);
        if let Some(entry) = self.state.grant_cache.get_mut(grant.key_id()) {
            entry.last_used = now;
        }
        *persist = true;
        let body = grant.body();
        Ok(Executed {
            command: request.command,
            key_id: body.key_id.clone(),
            operator_id: body.operator_id.clone(),
            personal: body.personal,
            usage_session,
        })
    }

    fn check_grant(&self, grant: &Grant, now: u64) -> Result<(), GrantError> {
        if !grant.covers(&self.machine_id) {
            return Err(GrantError::WrongMachine);
        }
        grant.check_time(now)?;
        let serial = grant.body().serial;
        if self
            .revocations
            .as_ref()
            .is_some_and(|l| l.refuses(grant.key_id(), serial))
        {
            return Err(GrantError::Revoked);
        }
        Ok(())
    }

    /// Caches a grant that passed, unless a newer version of the key is already cached.
    fn cache(&mut self, grant: &Grant, now: u64) {
        let body = grant.body();
        if let Some(held) = self.state.grant_cache.get(grant.key_id())
            && let Ok(held) = Grant::decode(&held.grant)
            && (held.body().serial, held.body().issued_at) > (body.serial, body.issued_at)
        {
            return;
        }
        self.state.grant_cache.insert(
            body.key_id.clone(),
            CachedGrant {
                grant: grant.as_bytes().to_vec(),
                last_used: now,
            },
        );
        while self.state.grant_cache.len() > GRANT_CACHE_CAPACITY {
            let oldest = self
                .state
                .grant_cache
                .iter()
                .filter(|(key_id, _)| **key_id != body.key_id)
                .min_by_key(|(key_id, entry)| (entry.last_used, *key_id))
                .map(|(key_id, _)| key_id.clone());
            match oldest {
                Some(key_id) => self.state.grant_cache.remove(&key_id),
                None => break,
            };
        }
    }
}

/// A request that passed every check.
struct Executed {
    command: Command,
    key_id: String,
    operator_id: String,
    personal: bool,
    usage_session: u32,
}

impl Executed {
    fn into_decision(self, relock_after_s: u16) -> (Decision, ResultPlaintext) {
        let Executed {
            command,
            key_id,
            operator_id,
            personal,
            usage_session,
        } = self;
        match command {
            Command::Unlock => (
                Decision::Unlocked {
                    key_id,
                    operator_id,
                    personal,
                    usage_session,
                    relock_after_s,
                },
                ResultPlaintext {
                    status: Status::Unlocked,
                    relock_after_s,
                    usage_session,
                },
            ),
            Command::Lock => (
                Decision::Locked {
                    key_id,
                    operator_id,
                    personal,
                    usage_session,
                },
                ResultPlaintext {
                    status: Status::Locked,
                    relock_after_s: 0,
                    usage_session,
                },
            ),
        }
    }
}

/// A plaintext Error: nothing was decrypted, so nothing changed.
fn refusal(reason: ReasonCode) -> Outcome {
    Outcome {
        reply: ErrorMessage { code: reason }.encode(),
        decision: Decision::Denied(reason),
        persist: false,
    }
}
