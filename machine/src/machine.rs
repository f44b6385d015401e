//! [`Machine`]: the simulated telematics unit. It owns the protocol's
//! [`MachineVerifier`], the state store, the immobilizer [`Relay`] and the [`UsageLog`],
//! and applies every decision in the order PROTOCOL.md 2.8 asks: persist, then move the
//! relay, then answer. Synchronous and sans-IO apart from its store: time is passed in
//! (`now`, the machine's RTC), timers advance only in [`Machine::tick`], and the link
//! reaches it through [`crate::Connection`]. The keypad and card reader
//! ([`Machine::keypad_entry`], [`Machine::present_card`]) drive the same relay and usage
//! log. It never logs; its secrets (machine key, keypad table) never appear in `Debug`
//! output or errors.

use crate::MachineError;
use crate::connection::ConnectionId;
use crate::keypad::{Check, KeypadAccess, KeypadOutcome, KeypadVerifier, TableUpdate};
use crate::provision::{Bundle, public_key_of, read_key_file};
use crate::relay::Relay;
use crate::store::{FileStore, STATE_FORMAT, StateStore, StoredState};
use crate::usage::{SessionEnd, UsageLog, UsageSession};
use opkey_protocol::api::{KeypadTable, MachineProvisioning};
use opkey_protocol::ble::messages::{ErrorMessage, message_type};
use opkey_protocol::ble::{
    Decision, FrameError, MachineConfig, MachineState, MachineVerifier, MessageType, ReasonCode,
    RevocationList, RevocationUpdate, SetupError,
};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Why the relay went off by itself or on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelockReason {
    /// The engine did not start within `relock_after_s`.
    Timeout,
    /// A phone sent the lock command.
    Command,
    /// The engine stopped after a started session.
    EngineStopped,
}

impl RelockReason {
    fn name(self) -> &'static str {
        match self {
            RelockReason::Timeout => "timeout",
            RelockReason::Command => "command",
            RelockReason::EngineStopped => "engine_stopped",
        }
    }
}

/// What an observer (a status display, a test, a script) learns from a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineEvent {
    /// The relay is on.
    Unlocked {
        key_id: String,
        /// The operator of a personal key; `None` for a non-personal key.
        operator_id: Option<String>,
        usage_session: u32,
        relock_after_s: u16,
    },
    /// A lock command was accepted (the relay is off, whether or not it was on).
    Locked {
        key_id: String,
        usage_session: u32,
    },
    /// A request was refused; the relay did not move.
    Denied(ReasonCode),
    /// The relay went from on to off; `usage_session` is the session that ended.
    Relocked {
        reason: RelockReason,
        usage_session: Option<u32>,
    },
    EngineStarted {
        usage_session: Option<u32>,
    },
}

/// One status line per event, `word key=value …`, for scripts reading the process.
impl fmt::Display for MachineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineEvent::Unlocked {
                key_id,
                operator_id,
                usage_session,
                relock_after_s,
            } => {
                write!(f, "unlocked key={key_id} session={usage_session}")?;
                if let Some(operator_id) = operator_id {
                    write!(f, " operator={operator_id}")?;
                }
                write!(f, " relock_after={relock_after_s}s")
            }
            MachineEvent::Locked {
                key_id,
                usage_session,
            } => {
                write!(f, "locked key={key_id} session={usage_session}")
            }
            MachineEvent::Denied(reason) => write!(f, "denied code={} reason={reason:?}", reason.code()),
            MachineEvent::Relocked {
                reason,
                usage_session,
            } => {
                write!(f, "relocked reason={}", reason.name())?;
                match usage_session {
                    Some(session) => write!(f, " session={session}"),
                    None => Ok(()),
                }
            }
            MachineEvent::EngineStarted { usage_session } => {
                write!(f, "engine started")?;
                match usage_session {
                    Some(session) => write!(f, " session={session}"),
                    None => Ok(()),
                }
            }
        }
    }
}

pub type SharedRandom = Arc<dyn SecureRandom + Send + Sync>;

/// The machine: verifier, relay, usage log and the store that keeps them across restarts.
pub struct Machine {
    name: String,
    verifier: MachineVerifier,
    store: Box<dyn StateStore>,
    relay: Relay,
    usage: UsageLog,
    rng: SharedRandom,
    /// The connection whose Hello is outstanding: only it may spend the challenge.
    challenge_owner: Option<ConnectionId>,
    next_connection: u64,
    keypad: KeypadVerifier,
    /// What the verifier is rebuilt from when the keypad takes a usage-session number.
    setup: Setup,
}

/// The verifier's configuration, kept to rebuild it. Holds the machine key.
struct Setup {
    machine_key_pkcs8: Zeroizing<Vec<u8>>,
    issuer_public_key: Vec<u8>,
    challenge_lifetime_s: u16,
    relock_after_s: u16,
}

impl Setup {
    fn config(&self, machine_id: &str) -> MachineConfig {
        MachineConfig {
            machine_id: machine_id.to_owned(),
            machine_key_pkcs8: self.machine_key_pkcs8.clone(),
            issuer_public_key: self.issuer_public_key.clone(),
            challenge_lifetime_s: self.challenge_lifetime_s,
            relock_after_s: self.relock_after_s,
        }
    }
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("machine_id", &self.verifier.machine_id())
            .field("name", &self.name)
            .field("relay", &self.relay)
            .field("store", &self.store)
            .field("challenge_owner", &self.challenge_owner)
            .field("keypad", &self.keypad)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine from its provisioning bundle, its key file and its state file (created on
    /// first start). Refuses a key that is not the one the bundle was made for.
    pub fn open(
        provisioning: &MachineProvisioning,
        key_file: &Path,
        state_file: &Path,
    ) -> Result<Self, MachineError> {
        let pkcs8 = read_key_file(key_file)?;
        Self::new(provisioning, pkcs8, Box::new(FileStore::new(state_file)))
    }

    /// A machine on any store, with the system's random number generator.
    pub fn new(
        provisioning: &MachineProvisioning,
        machine_key_pkcs8: Zeroizing<Vec<u8>>,
        store: Box<dyn StateStore>,
    ) -> Result<Self, MachineError> {
        Self::with_rng(
            provisioning,
            machine_key_pkcs8,
            store,
            Arc::new(SystemRandom::new()),
        )
    }

    /// Loads the last state, checks the key against the bundle, applies the bundle's
    /// revocation list and keypad table (kept only when newer than the one held), closes a
    /// usage session a restart interrupted, and saves.
    pub fn with_rng(
        provisioning: &MachineProvisioning,
        machine_key_pkcs8: Zeroizing<Vec<u8>>,
        mut store: Box<dyn StateStore>,
        rng: SharedRandom,
    ) -> Result<Self, MachineError> {
        let bundle = Bundle::decode(provisioning)?;
        let public_key =
            public_key_of(&machine_key_pkcs8, &*rng).ok_or(MachineError::Setup(SetupError::BadMachineKey))?;
        if public_key != bundle.machine_public_key {
            return Err(MachineError::KeyMismatch);
        }
        let (state, sessions, uploaded_through, keypad) = match store.load()? {
            None => (MachineState::default(), Vec::new(), 0, Default::default()),
            Some(stored) => {
                if stored.format != STATE_FORMAT {
                    return Err(MachineError::UnsupportedStateFormat {
                        found: stored.format,
                        expected: STATE_FORMAT,
                    });
                }
                if stored.machine_id != provisioning.machine_id {
                    return Err(MachineError::StateOfAnotherMachine {
                        found: stored.machine_id,
                        expected: provisioning.machine_id.clone(),
                    });
                }
                (
                    stored.verifier,
                    stored.usage,
                    stored.usage_uploaded_through,
                    stored.keypad,
                )
            }
        };
        let setup = Setup {
            machine_key_pkcs8,
            issuer_public_key: bundle.issuer_public_key,
            challenge_lifetime_s: provisioning.challenge_lifetime_s,
            relock_after_s: provisioning.relock_after_s,
        };
        let verifier = MachineVerifier::new(setup.config(&provisioning.machine_id), state, &*rng)?;
        let keypad = KeypadVerifier::new(&provisioning.machine_id, keypad)?;
        let mut machine = Self {
            name: provisioning.name.clone(),
            verifier,
            store,
            relay: Relay::default(),
            usage: UsageLog::from_sessions(sessions, uploaded_through),
            rng,
            challenge_owner: None,
            next_connection: 0,
            keypad,
            setup,
        };
        if let Some(list) = bundle.revocations {
            machine
                .verifier
                .apply_revocations(&list)
                .map_err(MachineError::BadBundleRevocations)?;
        }
        if let Some(table) = &provisioning.keypad {
            machine.keypad.offer_table(table.clone())?;
        }
        // The relay is off after a restart, so a session left open ended then, at an
        // instant nobody recorded.
        machine.usage.end(None, SessionEnd::Restart);
        machine.save()?;
        Ok(machine)
    }

    pub fn machine_id(&self) -> &str {
        self.verifier.machine_id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// SEC1 uncompressed, as registered with the backend.
    pub fn public_key(&self) -> &[u8] {
        self.verifier.public_key()
    }

    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    pub fn usage(&self) -> &UsageLog {
        &self.usage
    }

    /// Closed usage sessions the backend has not acknowledged yet, oldest first: what a
    /// reporter sends next ([`crate::report`]).
    pub fn pending_usage(&self) -> Vec<UsageSession> {
        self.usage.pending().cloned().collect()
    }

    /// The backend stored every session up to `upto`: they are no longer pending. Durable
    /// before it returns; acknowledging less than before changes nothing.
    pub fn acknowledge_usage(&mut self, upto: u32) -> Result<(), MachineError> {
        let before = self.usage.clone();
        if self.usage.acknowledge(upto)
            && let Err(e) = self.save()
        {
            self.usage = before;
            return Err(e);
        }
        Ok(())
    }

    /// The verifier's persisted state (counters, clock floor, revocations, grant cache).
    pub fn state(&self) -> &MachineState {
        self.verifier.state()
    }

    /// The next instant [`Machine::tick`] has work to do, if any.
    pub fn next_deadline(&self) -> Option<OffsetDateTime> {
        self.relay.relock_at()
    }

    /// Advances the timers to `now`: auto-relock when the engine did not start in time.
    /// The relay goes off even if saving the log then fails.
    pub fn tick(&mut self, now: OffsetDateTime) -> Result<Vec<MachineEvent>, MachineError> {
        if !self.relay.relock_due(now) {
            return Ok(Vec::new());
        }
        Ok(vec![self.relock(now, RelockReason::Timeout)?])
    }

    /// The operator turns the key: possible only while the relay is on.
    pub fn start_engine(&mut self) -> Result<Vec<MachineEvent>, MachineError> {
        if self.relay.engine_running() {
            return Ok(Vec::new());
        }
        if !self.relay.start_engine() {
            return Err(MachineError::Immobilized);
        }
        Ok(vec![MachineEvent::EngineStarted {
            usage_session: self.usage.open_session().map(|s| s.usage_session),
        }])
    }

    /// The engine stops: the usage session ends and the relay locks.
    pub fn stop_engine(&mut self, now: OffsetDateTime) -> Result<Vec<MachineEvent>, MachineError> {
        if !self.relay.engine_running() {
            return Ok(Vec::new());
        }
        Ok(vec![self.relock(now, RelockReason::EngineStopped)?])
    }

    /// A revocation list from the backend (when the machine is online). Phones carry
    /// theirs inside requests.
    pub fn apply_revocations(&mut self, list: &[u8]) -> Result<RevocationUpdate, MachineError> {
        let update = self.verifier.apply_revocations(list)?;
        if update.persist {
            self.save()?;
        }
        Ok(update)
    }

    // ----- the keypad and card reader -----

    /// Typed digits from the keypad (a Rolling PIN: slot prefix then code; or a Static
    /// PIN), at `now` (the machine's RTC). Accepted: the relay goes on and a usage session
    /// opens exactly as for a BLE unlock (state saved first). Refused: nothing moves; a
    /// wrong entry counts towards a lockout. Never logs or returns what was typed.
    pub fn keypad_entry(&mut self, typed: &str, now: OffsetDateTime) -> Result<KeypadReply, MachineError> {
        let at = self.machine_unix(now);
        let revocations = self.revocation_list();
        let check = self.keypad.enter(typed, at, revocations.as_ref());
        self.apply_check(check, now)
    }

    /// A card held to the reader (its id as read), at `now`; as [`Machine::keypad_entry`].
    pub fn present_card(&mut self, card_id: &str, now: OffsetDateTime) -> Result<KeypadReply, MachineError> {
        let at = self.machine_unix(now);
        let revocations = self.revocation_list();
        let check = self.keypad.present_card(card_id, at, revocations.as_ref());
        self.apply_check(check, now)
    }

    /// A keypad table (from the backend): refused whole if any entry is bad (the table
    /// held stays), ignored unless its version is higher than the one held, else kept and
    /// saved before this returns.
    pub fn apply_keypad_table(&mut self, table: KeypadTable) -> Result<TableUpdate, MachineError> {
        let before = self.keypad.state().clone();
        let update = self.keypad.offer_table(table)?;
        if matches!(update, TableUpdate::Replaced { .. })
            && let Err(e) = self.save()
        {
            self.keypad = KeypadVerifier::new(self.machine_id(), before)?;
            return Err(e);
        }
        Ok(update)
    }

    /// The keypad table's version (0: none).
    pub fn keypad_table_version(&self) -> u64 {
        self.keypad.table_version()
    }

    /// Seconds the keypad stays locked out at `now`, if it is.
    pub fn keypad_locked_out_for(&self, now: OffsetDateTime) -> Option<u64> {
        self.keypad.locked_out_for(self.machine_unix(now))
    }

    /// The keypad's persisted state (table, throttle, last accepted steps). `Debug` of it
    /// shows no secret; its serialized form does (seeds, Static PINs).
    pub fn keypad(&self) -> &KeypadVerifier {
        &self.keypad
    }

    fn apply_check(&mut self, check: Check, now: OffsetDateTime) -> Result<KeypadReply, MachineError> {
        let holder = match check.outcome {
            Err(reason) => {
                if check.persist {
                    self.save()?;
                }
                return Ok(KeypadReply {
                    outcome: KeypadOutcome::Refused(reason),
                    events: Vec::new(),
                });
            }
            Ok(holder) => holder,
        };
        let usage_session = self.take_usage_session()?;
        let started_at = self.machine_time(now);
        let before = self.usage.clone();
        self.usage.end(Some(started_at), SessionEnd::NextUnlock);
        self.usage.start(UsageSession {
            usage_session,
            key_id: holder.key_id.clone(),
            operator_id: holder.operator_id.clone(),
            machine_id: self.machine_id().to_owned(),
            started_at,
            ended_at: None,
            ended_by: None,
        });
        if let Err(e) = self.save() {
            self.usage = before;
            return Err(e);
        }
        let relock_after_s = self.setup.relock_after_s;
        self.relay.unlock(now, relock_after_s);
        Ok(KeypadReply {
            outcome: KeypadOutcome::Accepted(KeypadAccess {
                key_id: holder.key_id.clone(),
                operator_id: holder.operator_id.clone(),
                access_type: holder.access_type,
                usage_session,
            }),
            events: vec![MachineEvent::Unlocked {
                key_id: holder.key_id,
                operator_id: holder.operator_id,
                usage_session,
                relock_after_s,
            }],
        })
    }

    /// The next usage-session number, from the verifier's counter so BLE and keypad
    /// sessions never share one. The verifier is rebuilt on the advanced state; a BLE
    /// challenge outstanding at that moment dies (the phone gets `StaleChallenge` and
    /// asks again).
    fn take_usage_session(&mut self) -> Result<u32, MachineError> {
        let mut state = self.verifier.state().clone();
        let usage_session = state.next_usage_session;
        state.next_usage_session = usage_session.checked_add(1).unwrap_or(1);
        let config = self.setup.config(self.machine_id());
        self.verifier = MachineVerifier::new(config, state, &*self.rng)?;
        self.challenge_owner = None;
        Ok(usage_session)
    }

    /// The revocation list held (it verified when it was accepted).
    fn revocation_list(&self) -> Option<RevocationList> {
        self.verifier
            .state()
            .revocations
            .as_deref()
            .and_then(|bytes| RevocationList::decode(bytes).ok())
    }

    /// The machine's clock in Unix seconds: `max(rtc, floor)`.
    fn machine_unix(&self, now: OffsetDateTime) -> i64 {
        self.machine_time(now).unix_timestamp()
    }

    fn relock(&mut self, now: OffsetDateTime, reason: RelockReason) -> Result<MachineEvent, MachineError> {
        self.relay.lock();
        let end = match reason {
            RelockReason::Timeout => SessionEnd::Timeout,
            RelockReason::Command => SessionEnd::Command,
            RelockReason::EngineStopped => SessionEnd::EngineStopped,
        };
        let usage_session = self.usage.end(Some(self.machine_time(now)), end);
        self.save()?;
        Ok(MachineEvent::Relocked {
            reason,
            usage_session,
        })
    }

    // ----- the link's entry points (through `Connection`) -----

    pub(crate) fn new_connection_id(&mut self) -> ConnectionId {
        self.next_connection += 1;
        ConnectionId(self.next_connection)
    }

    /// A fresh Hello for `connection`, persisted before it is returned: a crash after
    /// sending can never lead to the same counter twice.
    pub(crate) fn hello(
        &mut self,
        connection: ConnectionId,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, MachineError> {
        let hello = self.verifier.hello(rtc(now), &*self.rng)?;
        self.challenge_owner = Some(connection);
        if hello.persist {
            self.save()?;
        }
        Ok(hello.message)
    }

    /// One reassembled message from `connection`: the reply to send and what happened.
    pub(crate) fn receive(
        &mut self,
        connection: ConnectionId,
        message: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, Vec<MachineEvent>), MachineError> {
        let asks_hello = matches!(message_type(message), Ok(MessageType::HelloRequest));
        if !asks_hello && !self.owns_challenge(connection) {
            // Another central's challenge cannot be what this request answers, and this
            // central must not be able to spend it.
            return Ok(refuse(ReasonCode::StaleChallenge));
        }
        let outcome = self.verifier.handle(message, rtc(now));
        self.challenge_owner = None;
        let events = match outcome.decision {
            Decision::NeedsHello => return Ok((self.hello(connection, now)?, Vec::new())),
            Decision::Unlocked {
                key_id,
                operator_id,
                personal,
                usage_session,
                relock_after_s,
            } => {
                let started_at = self.machine_time(now);
                let before = self.usage.clone();
                self.usage.end(Some(started_at), SessionEnd::NextUnlock);
                let operator_id = personal.then_some(operator_id);
                self.usage.start(UsageSession {
                    usage_session,
                    key_id: key_id.clone(),
                    operator_id: operator_id.clone(),
                    machine_id: self.machine_id().to_owned(),
                    started_at,
                    ended_at: None,
                    ended_by: None,
                });
                if let Err(e) = self.save() {
                    self.usage = before;
                    return Err(e);
                }
                self.relay.unlock(now, relock_after_s);
                vec![MachineEvent::Unlocked {
                    key_id,
                    operator_id,
                    usage_session,
                    relock_after_s,
                }]
            }
            Decision::Locked {
                key_id,
                usage_session,
                ..
            } => {
                let before = self.usage.clone();
                let ended = self.usage.end(Some(self.machine_time(now)), SessionEnd::Command);
                if let Err(e) = self.save() {
                    self.usage = before;
                    return Err(e);
                }
                let mut events = vec![MachineEvent::Locked {
                    key_id,
                    usage_session,
                }];
                if self.relay.lock() {
                    events.push(MachineEvent::Relocked {
                        reason: RelockReason::Command,
                        usage_session: ended,
                    });
                }
                events
            }
            Decision::Denied(reason) => {
                if outcome.persist {
                    self.save()?;
                }
                vec![MachineEvent::Denied(reason)]
            }
        };
        Ok((outcome.reply, events))
    }

    /// `connection` sent fragments that do not make a message.
    pub(crate) fn frame_error(
        &mut self,
        connection: ConnectionId,
        error: FrameError,
    ) -> (Vec<u8>, Vec<MachineEvent>) {
        if !self.owns_challenge(connection) {
            return refuse(ReasonCode::Malformed);
        }
        self.challenge_owner = None;
        let outcome = self.verifier.frame_error(error);
        (outcome.reply, vec![MachineEvent::Denied(ReasonCode::Malformed)])
    }

    /// The challenge dies with the connection it was sent on, and only with that one.
    pub(crate) fn disconnected(&mut self, connection: ConnectionId) {
        if self.challenge_owner == Some(connection) {
            self.challenge_owner = None;
            self.verifier.disconnected();
        }
    }

    /// True when `connection` may spend the outstanding challenge (or there is none, and
    /// the verifier itself answers `StaleChallenge`).
    fn owns_challenge(&self, connection: ConnectionId) -> bool {
        !self.verifier.challenge_outstanding() || self.challenge_owner == Some(connection)
    }

    /// The machine's clock, `max(rtc, floor)`, for the usage log.
    fn machine_time(&self, now: OffsetDateTime) -> OffsetDateTime {
        let machine = self.verifier.now(rtc(now));
        i64::try_from(machine)
            .ok()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .map_or(now, |t| t.max(now))
    }

    fn save(&mut self) -> Result<(), MachineError> {
        let stored = StoredState {
            format: STATE_FORMAT,
            machine_id: self.machine_id().to_owned(),
            verifier: self.verifier.state().clone(),
            usage: self.usage.sessions().to_vec(),
            usage_uploaded_through: self.usage.uploaded_through(),
            keypad: self.keypad.state().clone(),
        };
        self.store.save(&stored)
    }
}

/// What the keypad or card reader answers, and what an observer learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeypadReply {
    pub outcome: KeypadOutcome,
    /// `Unlocked` when accepted; nothing when refused.
    pub events: Vec<MachineEvent>,
}

/// A plaintext Error that spends nothing and changes nothing.
fn refuse(reason: ReasonCode) -> (Vec<u8>, Vec<MachineEvent>) {
    (
        ErrorMessage { code: reason }.encode(),
        vec![MachineEvent::Denied(reason)],
    )
}

/// The RTC reading in Unix seconds (a clock before 1970 reads 0; the floor corrects it).
fn rtc(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp()).unwrap_or(0)
}
