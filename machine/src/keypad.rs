//! The keypad and card reader (PROTOCOL.md Part 3): Rolling PINs checked offline at ±1
//! step, Static PINs, and presented card ids, all against the machine's [`KeypadTable`].
//!
//! [`KeypadVerifier`] is pure logic: it is fed what was typed (or the card id read) and the
//! machine's time (`max(rtc, clock floor)`, so it never goes back), and the machine's
//! current revocation list; it answers a [`KeypadOutcome`] and says whether its
//! [`KeypadState`] must be persisted before the answer is acted on. The [`crate::Machine`]
//! turns an accepted entry into the same relay and usage session as a BLE unlock.
//!
//! - Rolling: the 3-digit slot names the key; its code must match one of the ±1 steps
//!   around the machine's step, and that step must be later than the last step accepted
//!   for the key (RFC 6238 §5.2: a code is good once).
//! - Static: compared in constant time with every Static PIN of the table.
//! - Card: looked up by its id (trimmed, ASCII case-insensitive).
//! - Every accepted key must be inside its From/To and not revoked by the revocation list
//!   (`serial < min_serial`), the same issuer-signed list the BLE path holds.
//! - Throttling: an entry that could be a guess (wrong code, unknown slot, unknown Static
//!   PIN, unknown card) counts. [`FREE_FAILURES`] are free; each further one locks the
//!   keypad and card reader for 30 s, 60 s, 120 s … at most 15 min. While locked out every
//!   entry, right or wrong, is refused alike. An accepted entry resets the count.
//!
//! Seeds, PINs and typed digits never appear in `Debug` output, errors or answers.

use opkey_protocol::AccessType;
use opkey_protocol::api::{KeypadHolder, KeypadTable};
use opkey_protocol::ble::RevocationList;
use opkey_protocol::pin::{
    KeypadEntry, KeypadEntryError, KeypadSlot, PinSeed, PinSpec, PinSpecError, matching_step,
    validate_static_pin,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use zeroize::Zeroizing;

/// Wrong entries allowed before the first lockout.
pub const FREE_FAILURES: u32 = 3;
/// The first lockout; each further wrong entry doubles it.
pub const FIRST_LOCKOUT_S: u64 = 30;
/// The longest lockout.
pub const MAX_LOCKOUT_S: u64 = 15 * 60;
/// The prefix of a card read on the line protocol (`card:CARD_ID`).
pub const CARD_PREFIX: &str = "card:";
/// The longest card id the reader takes.
pub const MAX_CARD_ID_LEN: usize = 128;

/// Why an entry or a card was refused. Snake-case names on the wire ([`Self::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeypadRefusal {
    /// Not a PIN (wrong length, not digits, no such slot) or not a card id.
    Malformed,
    /// Too many wrong entries: nothing is checked for `retry_after_s` more seconds.
    LockedOut { retry_after_s: u64 },
    /// No key has this PIN (or the code is not the key's at this time).
    WrongPin,
    /// No key has this card.
    UnknownCard,
    /// The key's From is still ahead.
    NotYetValid,
    /// The key's To has passed.
    Expired,
    /// The revocation list withdrew this key (or this version of it).
    Revoked,
    /// This Rolling PIN (or a later one of the same key) was already accepted.
    AlreadyUsed,
    /// The machine holds no keypad table.
    NoKeypadTable,
}

impl KeypadRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            KeypadRefusal::Malformed => "malformed",
            KeypadRefusal::LockedOut { .. } => "locked_out",
            KeypadRefusal::WrongPin => "wrong_pin",
            KeypadRefusal::UnknownCard => "unknown_card",
            KeypadRefusal::NotYetValid => "not_yet_valid",
            KeypadRefusal::Expired => "expired",
            KeypadRefusal::Revoked => "revoked",
            KeypadRefusal::AlreadyUsed => "already_used",
            KeypadRefusal::NoKeypadTable => "no_keypad_table",
        }
    }

    /// What a keypad display would say. Never contains what was typed.
    pub fn message(self) -> String {
        match self {
            KeypadRefusal::Malformed => {
                "not a PIN: type 4-8 digits (Static PIN) or the 9-13 digits of a Rolling PIN".into()
            }
            KeypadRefusal::LockedOut { retry_after_s } => {
                format!("too many wrong entries: the keypad is locked, try again in {retry_after_s} s")
            }
            KeypadRefusal::WrongPin => "wrong PIN".into(),
            KeypadRefusal::UnknownCard => "unknown card".into(),
            KeypadRefusal::NotYetValid => "this key is not valid yet".into(),
            KeypadRefusal::Expired => "this key has expired".into(),
            KeypadRefusal::Revoked => "this key was revoked".into(),
            KeypadRefusal::AlreadyUsed => "this PIN was already used: wait for the next one".into(),
            KeypadRefusal::NoKeypadTable => "this machine has no keypad table yet".into(),
        }
    }

    /// True for a failure that could be a guess: it counts towards a lockout.
    fn is_guess(self) -> bool {
        matches!(self, KeypadRefusal::WrongPin | KeypadRefusal::UnknownCard)
    }
}

impl fmt::Display for KeypadRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// Who an accepted entry stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeypadAccess {
    pub key_id: String,
    /// The operator of a personal key; `None` for a non-personal key.
    pub operator_id: Option<String>,
    pub access_type: AccessType,
    /// The usage session the unlock opened.
    pub usage_session: u32,
}

/// The answer to one entry or card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeypadOutcome {
    Accepted(KeypadAccess),
    Refused(KeypadRefusal),
}

impl KeypadOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, KeypadOutcome::Accepted(_))
    }

    /// The one JSON line of the keypad line protocol (README, "Keypad line protocol"):
    /// `{"accepted":true,"key_id":…,"operator_id":…|null,"access_type":"rolling-pin","usage_session":3}`
    /// or `{"accepted":false,"reason":"wrong_pin","message":…}` (+ `"retry_after_s"` when
    /// locked out). No newline.
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Accepted<'a> {
            accepted: bool,
            key_id: &'a str,
            operator_id: Option<&'a str>,
            access_type: AccessType,
            usage_session: u32,
        }
        #[derive(Serialize)]
        struct Refused {
            accepted: bool,
            reason: &'static str,
            message: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after_s: Option<u64>,
        }
        let json = match self {
            KeypadOutcome::Accepted(a) => serde_json::to_string(&Accepted {
                accepted: true,
                key_id: &a.key_id,
                operator_id: a.operator_id.as_deref(),
                access_type: a.access_type,
                usage_session: a.usage_session,
            }),
            KeypadOutcome::Refused(reason) => serde_json::to_string(&Refused {
                accepted: false,
                reason: reason.as_str(),
                message: reason.message(),
                retry_after_s: match reason {
                    KeypadRefusal::LockedOut { retry_after_s } => Some(*retry_after_s),
                    _ => None,
                },
            }),
        };
        json.expect("a keypad answer always serializes")
    }
}

/// A status line: `keypad accepted key=… access=rolling-pin session=3 [operator=…]` or
/// `keypad refused reason=wrong_pin [retry_after=30s]`. Never what was typed.
impl fmt::Display for KeypadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeypadOutcome::Accepted(a) => {
                write!(
                    f,
                    "keypad accepted key={} access={} session={}",
                    a.key_id,
                    access_name(a.access_type),
                    a.usage_session
                )?;
                match &a.operator_id {
                    Some(operator) => write!(f, " operator={operator}"),
                    None => Ok(()),
                }
            }
            KeypadOutcome::Refused(reason) => {
                write!(f, "keypad refused reason={}", reason.as_str())?;
                match reason {
                    KeypadRefusal::LockedOut { retry_after_s } => write!(f, " retry_after={retry_after_s}s"),
                    _ => Ok(()),
                }
            }
        }
    }
}

fn access_name(access: AccessType) -> String {
    serde_json::to_value(access)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{access:?}"))
}

/// Why a keypad table was refused. The table held before stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeypadTableError {
    #[error("the keypad table is for machine {found}, not {expected}")]
    OtherMachine { found: String, expected: String },
    #[error("the Rolling PIN seed of key {key_id} is not valid base64url")]
    BadSeed { key_id: String },
    #[error("the Rolling PIN settings of key {key_id} are out of range: {source}")]
    BadSpec { key_id: String, source: PinSpecError },
    #[error("keypad slot {slot} is given to more than one key")]
    DuplicateSlot { slot: KeypadSlot },
    #[error("the Static PIN of key {key_id} is not 4 to 8 digits")]
    BadStaticPin { key_id: String },
    #[error("the Static PIN of key {key_id} is also another key's (Static PINs are unique per device)")]
    DuplicateStaticPin { key_id: String },
    #[error("the card of key {key_id} has an empty or overlong id, or access type {access_type:?}")]
    BadCard { key_id: String, access_type: AccessType },
    #[error("the card of key {key_id} is also another key's")]
    DuplicateCard { key_id: String },
    #[error("key {key_id}'s To is not after its From")]
    BadValidity { key_id: String },
}

/// A decoded Rolling PIN key.
struct RollingKey {
    holder: KeypadHolder,
    spec: PinSpec,
    seed: PinSeed,
}

/// A decoded Static PIN.
struct StaticKey {
    holder: KeypadHolder,
    pin: Zeroizing<Vec<u8>>,
}

struct CardKey {
    holder: KeypadHolder,
    access_type: AccessType,
}

/// A [`KeypadTable`] checked and decoded, ready to verify entries.
struct LoadedTable {
    rolling: BTreeMap<KeypadSlot, RollingKey>,
    statics: Vec<StaticKey>,
    cards: HashMap<String, CardKey>,
}

impl LoadedTable {
    fn decode(table: &KeypadTable, machine_id: &str) -> Result<Self, KeypadTableError> {
        if table.machine_id != machine_id {
            return Err(KeypadTableError::OtherMachine {
                found: table.machine_id.clone(),
                expected: machine_id.to_owned(),
            });
        }
        let check_validity = |holder: &KeypadHolder| {
            if holder.valid_to <= holder.valid_from {
                Err(KeypadTableError::BadValidity {
                    key_id: holder.key_id.clone(),
                })
            } else {
                Ok(())
            }
        };
        let mut rolling = BTreeMap::new();
        for key in &table.rolling_pins {
            let key_id = &key.holder.key_id;
            check_validity(&key.holder)?;
            let spec = key.pin.spec();
            spec.validate().map_err(|source| KeypadTableError::BadSpec {
                key_id: key_id.clone(),
                source,
            })?;
            let seed = PinSeed::from_b64(&key.seed).ok_or_else(|| KeypadTableError::BadSeed {
                key_id: key_id.clone(),
            })?;
            let slot = key.pin.slot;
            let decoded = RollingKey {
                holder: key.holder.clone(),
                spec,
                seed,
            };
            if rolling.insert(slot, decoded).is_some() {
                return Err(KeypadTableError::DuplicateSlot { slot });
            }
        }
        let mut statics: Vec<StaticKey> = Vec::with_capacity(table.static_pins.len());
        for key in &table.static_pins {
            let key_id = &key.holder.key_id;
            check_validity(&key.holder)?;
            if validate_static_pin(&key.static_pin).is_err() {
                return Err(KeypadTableError::BadStaticPin {
                    key_id: key_id.clone(),
                });
            }
            let pin = Zeroizing::new(key.static_pin.as_bytes().to_vec());
            if statics.iter().any(|s| *s.pin == *pin) {
                return Err(KeypadTableError::DuplicateStaticPin {
                    key_id: key_id.clone(),
                });
            }
            statics.push(StaticKey {
                holder: key.holder.clone(),
                pin,
            });
        }
        let mut cards = HashMap::new();
        for card in &table.cards {
            let key_id = &card.holder.key_id;
            check_validity(&card.holder)?;
            let id = normalize_card(&card.card_id);
            let is_card = matches!(
                card.access_type,
                AccessType::PrimaryKeyCard | AccessType::KeyCard | AccessType::IpafCard
            );
            if id.is_empty() || id.len() > MAX_CARD_ID_LEN || !is_card {
                return Err(KeypadTableError::BadCard {
                    key_id: key_id.clone(),
                    access_type: card.access_type,
                });
            }
            let decoded = CardKey {
                holder: card.holder.clone(),
                access_type: card.access_type,
            };
            if cards.insert(id, decoded).is_some() {
                return Err(KeypadTableError::DuplicateCard {
                    key_id: key_id.clone(),
                });
            }
        }
        Ok(Self {
            rolling,
            statics,
            cards,
        })
    }
}

fn normalize_card(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// The wrong-entry count and the lockout in force. Persisted; never rolls back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Entries that could be guesses since the last accepted one.
    pub failures: u32,
    /// Machine time (Unix seconds) the current lockout began, if one was ever set since
    /// the last accepted entry.
    pub locked_at: Option<i64>,
    /// Its length.
    pub lockout_s: u64,
}

impl Throttle {
    /// Seconds left of the lockout at `now`, if locked out. A clock that went back before
    /// the lockout began restarts it from `now` (it never shortens it).
    fn remaining(&mut self, now: i64, persist: &mut bool) -> Option<u64> {
        let at = self.locked_at?;
        if now < at {
            self.locked_at = Some(now);
            *persist = true;
        }
        let until = self
            .locked_at?
            .saturating_add(i64::try_from(self.lockout_s).unwrap_or(i64::MAX));
        (now < until).then(|| u64::try_from(until - now).unwrap_or(u64::MAX))
    }

    fn fail(&mut self, now: i64) {
        self.failures = self.failures.saturating_add(1);
        if self.failures > FREE_FAILURES {
            self.lockout_s = lockout_for(self.failures);
            self.locked_at = Some(now);
        }
    }

    fn reset(&mut self) {
        *self = Throttle::default();
    }
}

/// The lockout after the `failures`-th wrong entry (the 4th locks for 30 s).
pub fn lockout_for(failures: u32) -> u64 {
    if failures <= FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    (FIRST_LOCKOUT_S << doublings).min(MAX_LOCKOUT_S)
}

/// The last Rolling PIN step accepted for a key, and the period it was counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedStep {
    pub step: u64,
    pub period_s: u32,
}

impl AcceptedStep {
    /// Unix seconds at which the step ended.
    fn end(&self) -> u64 {
        self.step
            .saturating_add(1)
            .saturating_mul(u64::from(self.period_s))
    }
}

/// Everything of the keypad that survives a restart: the table (**secret**: seeds and
/// Static PINs), the throttle and the last accepted step per key. `Debug` shows no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeypadState {
    #[serde(default)]
    pub table: Option<KeypadTable>,
    #[serde(default)]
    pub throttle: Throttle,
    /// key id → the last Rolling PIN step accepted.
    #[serde(default)]
    pub last_steps: BTreeMap<String, AcceptedStep>,
}

/// What a keypad table offered to the machine came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableUpdate {
    /// Newer than the one held: it replaced it.
    Replaced { version: u64 },
    /// Not newer than the one held (`held`): ignored, nothing changed.
    Ignored { offered: u64, held: u64 },
}

/// One check's result for the [`crate::Machine`]: who it was for (the usage session is
/// then allocated by the machine) or why not, and whether the state must be saved first.
#[derive(Debug)]
pub(crate) struct Check {
    pub outcome: Result<Holder, KeypadRefusal>,
    pub persist: bool,
}

/// The key an accepted entry stands for.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub key_id: String,
    pub operator_id: Option<String>,
    pub access_type: AccessType,
}

/// The keypad and card reader's verifier. Pure: no clock, no I/O.
pub struct KeypadVerifier {
    machine_id: String,
    state: KeypadState,
    loaded: Option<LoadedTable>,
}

impl fmt::Debug for KeypadVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeypadVerifier")
            .field("machine_id", &self.machine_id)
            .field("table", &self.state.table)
            .field("throttle", &self.state.throttle)
            .finish_non_exhaustive()
    }
}

impl KeypadVerifier {
    /// A verifier from the persisted state. A stored table that no longer decodes is an
    /// error (the state file was tampered with or is corrupt).
    pub fn new(machine_id: &str, state: KeypadState) -> Result<Self, KeypadTableError> {
        let loaded = state
            .table
            .as_ref()
            .map(|t| LoadedTable::decode(t, machine_id))
            .transpose()?;
        Ok(Self {
            machine_id: machine_id.to_owned(),
            state,
            loaded,
        })
    }

    pub fn state(&self) -> &KeypadState {
        &self.state
    }

    /// The version of the table held (0: none).
    pub fn table_version(&self) -> u64 {
        self.state.table.as_ref().map_or(0, |t| t.version)
    }

    /// Offers a table: checked whole first (a bad one changes nothing), then kept only if
    /// its version is higher than the one held. Persist on `Replaced`.
    pub fn offer_table(&mut self, table: KeypadTable) -> Result<TableUpdate, KeypadTableError> {
        let loaded = LoadedTable::decode(&table, &self.machine_id)?;
        let held = self.table_version();
        if self.state.table.is_some() && table.version <= held {
            return Ok(TableUpdate::Ignored {
                offered: table.version,
                held,
            });
        }
        let version = table.version;
        // The last accepted steps stay, even of keys the new table drops: a key that comes
        // back must not open twice with the same PIN.
        self.state.table = Some(table);
        self.loaded = Some(loaded);
        Ok(TableUpdate::Replaced { version })
    }

    /// Seconds left of a lockout at `now`, if the keypad is locked out.
    pub fn locked_out_for(&self, now: i64) -> Option<u64> {
        self.state.throttle.clone().remaining(now, &mut false)
    }

    /// Typed digits at machine time `now` (Unix seconds).
    pub(crate) fn enter(&mut self, typed: &str, now: i64, revocations: Option<&RevocationList>) -> Check {
        self.check(now, |table| {
            let entry = match KeypadEntry::parse(typed) {
                Ok(entry) => entry,
                Err(
                    KeypadEntryError::NotDigits
                    | KeypadEntryError::Length(_)
                    | KeypadEntryError::NoSuchSlot(_),
                ) => {
                    return Found::Refused(KeypadRefusal::Malformed);
                }
            };
            match entry {
                KeypadEntry::Rolling { slot, code } => {
                    let Some(key) = table.rolling.get(&slot) else {
                        return Found::Refused(KeypadRefusal::WrongPin);
                    };
                    match matching_step(&key.seed, &key.spec, &code, now) {
                        Some(step) => Found::Rolling {
                            holder: &key.holder,
                            step: AcceptedStep {
                                step,
                                period_s: key.spec.period_s,
                            },
                        },
                        None => Found::Refused(KeypadRefusal::WrongPin),
                    }
                }
                KeypadEntry::Static(pin) => {
                    // Every PIN is compared, and every comparison runs to the end.
                    let mut found = None;
                    for key in &table.statics {
                        if same_bytes(&key.pin, pin.as_bytes()) {
                            found = Some(&key.holder);
                        }
                    }
                    match found {
                        Some(holder) => Found::Key {
                            holder,
                            access_type: AccessType::StaticPin,
                        },
                        None => Found::Refused(KeypadRefusal::WrongPin),
                    }
                }
            }
        })
        .finish(self, now, revocations)
    }

    /// A card read at machine time `now`.
    pub(crate) fn present_card(
        &mut self,
        card_id: &str,
        now: i64,
        revocations: Option<&RevocationList>,
    ) -> Check {
        self.check(now, |table| {
            let id = normalize_card(card_id);
            if id.is_empty() || id.len() > MAX_CARD_ID_LEN {
                return Found::Refused(KeypadRefusal::Malformed);
            }
            match table.cards.get(&id) {
                Some(card) => Found::Key {
                    holder: &card.holder,
                    access_type: card.access_type,
                },
                None => Found::Refused(KeypadRefusal::UnknownCard),
            }
        })
        .finish(self, now, revocations)
    }

    /// The lockout first (it hides everything), then the table, then `find`.
    fn check(&mut self, now: i64, find: impl FnOnce(&LoadedTable) -> Found<'_>) -> Pending {
        let mut persist = false;
        if let Some(retry_after_s) = self.state.throttle.remaining(now, &mut persist) {
            return Pending::Done(Check {
                outcome: Err(KeypadRefusal::LockedOut { retry_after_s }),
                persist,
            });
        }
        let Some(table) = &self.loaded else {
            return Pending::Done(Check {
                outcome: Err(KeypadRefusal::NoKeypadTable),
                persist,
            });
        };
        let found = match find(table) {
            Found::Refused(reason) => Err(reason),
            Found::Rolling { holder, step } => Ok((holder.clone(), AccessType::RollingPin, Some(step))),
            Found::Key { holder, access_type } => Ok((holder.clone(), access_type, None)),
        };
        Pending::Found { found, persist }
    }
}

/// What the table said about an entry, before validity, revocation and reuse.
enum Found<'a> {
    Refused(KeypadRefusal),
    Rolling {
        holder: &'a KeypadHolder,
        step: AcceptedStep,
    },
    Key {
        holder: &'a KeypadHolder,
        access_type: AccessType,
    },
}

type FoundKey = (KeypadHolder, AccessType, Option<AcceptedStep>);

enum Pending {
    Done(Check),
    Found {
        found: Result<FoundKey, KeypadRefusal>,
        persist: bool,
    },
}

impl Pending {
    fn finish(self, verifier: &mut KeypadVerifier, now: i64, revocations: Option<&RevocationList>) -> Check {
        let (found, mut persist) = match self {
            Pending::Done(check) => return check,
            Pending::Found { found, persist } => (found, persist),
        };
        let state = &mut verifier.state;
        let outcome = found.and_then(|(holder, access_type, step)| {
            let t = now;
            if t < holder.valid_from.unix_timestamp() {
                return Err(KeypadRefusal::NotYetValid);
            }
            if t >= holder.valid_to.unix_timestamp() {
                return Err(KeypadRefusal::Expired);
            }
            if revocations.is_some_and(|l| l.refuses(&holder.key_id, holder.serial)) {
                return Err(KeypadRefusal::Revoked);
            }
            if let Some(step) = step {
                let start = step.step.saturating_mul(u64::from(step.period_s));
                if let Some(last) = state.last_steps.get(&holder.key_id)
                    && start < last.end()
                {
                    return Err(KeypadRefusal::AlreadyUsed);
                }
                state.last_steps.insert(holder.key_id.clone(), step);
            }
            Ok(Holder {
                key_id: holder.key_id,
                operator_id: holder.operator_id,
                access_type,
            })
        });
        match &outcome {
            Ok(_) => {
                state.throttle.reset();
                persist = true;
            }
            Err(reason) if reason.is_guess() => {
                state.throttle.fail(now);
                persist = true;
            }
            Err(_) => {}
        }
        Check { outcome, persist }
    }
}

/// Compares two byte strings without stopping at the first difference.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    use opkey_protocol::api::KeypadRollingPin;
    use opkey_protocol::encoding::b64;
    use opkey_protocol::model::RollingPinInfo;
    use opkey_protocol::pin::{PinAlgorithm, rolling_pin};
    use time::OffsetDateTime;

    const NOW: i64 = 1_760_000_000;
    const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verifier() -> KeypadVerifier {
        let holder = KeypadHolder {
            key_id: "key_1".into(),
            operator_id: None,
            serial: 1,
            valid_from: OffsetDateTime::from_unix_timestamp(NOW - 86_400).unwrap(),
            valid_to: OffsetDateTime::from_unix_timestamp(NOW + 86_400).unwrap(),
        };
        let table = KeypadTable {
            machine_id: "mch_1".into(),
            version: 1,
            rolling_pins: vec![KeypadRollingPin {
                holder,
                pin: RollingPinInfo {
                    slot: KeypadSlot::new(1).unwrap(),
                    algorithm: PinAlgorithm::Sha1,
                    digits: 8,
                    period_s: 30,
                },
                seed: b64(SEED),
            }],
            static_pins: Vec::new(),
            cards: Vec::new(),
        };
        let mut verifier = KeypadVerifier::new("mch_1", KeypadState::default()).unwrap();
        verifier.offer_table(table).unwrap();
        verifier
    }

    fn pin(at: i64) -> String {
        let spec = PinSpec {
            algorithm: PinAlgorithm::Sha1,
            digits: 8,
            period_s: 30,
        };
        let seed = PinSeed::new(SEED.to_vec()).unwrap();
        rolling_pin(&seed, &spec, KeypadSlot::new(1).unwrap(), at)
            .pin
            .to_string()
    }

    #[test]
    fn the_window_is_one_step_either_side_and_each_step_opens_once() {
        let mut v = verifier();
        let ok = |c: Check| c.outcome.map(|h| h.key_id);
        assert_eq!(
            ok(v.enter(&pin(NOW - 60), NOW, None)),
            Err(KeypadRefusal::WrongPin)
        );
        assert_eq!(
            ok(v.enter(&pin(NOW + 60), NOW, None)),
            Err(KeypadRefusal::WrongPin)
        );
        assert_eq!(ok(v.enter(&pin(NOW - 30), NOW, None)), Ok("key_1".into()));
        assert_eq!(
            ok(v.enter(&pin(NOW - 30), NOW, None)),
            Err(KeypadRefusal::AlreadyUsed)
        );
        assert_eq!(ok(v.enter(&pin(NOW + 30), NOW, None)), Ok("key_1".into()));
        assert_eq!(ok(v.enter(&pin(NOW), NOW, None)), Err(KeypadRefusal::AlreadyUsed));
        assert_eq!(v.state().last_steps["key_1"].step, (NOW as u64 + 30) / 30);
    }

    #[test]
    fn a_clock_set_back_restarts_a_lockout_rather_than_shortening_or_stretching_it() {
        let mut v = verifier();
        for i in 0..4 {
            let check = v.enter("99999999", NOW + i, None);
            assert!(check.persist);
        }
        assert_eq!(v.locked_out_for(NOW + 3), Some(30));
        let back = v.enter(&pin(NOW - 5000), NOW - 5000, None);
        assert_eq!(
            back.outcome.unwrap_err(),
            KeypadRefusal::LockedOut { retry_after_s: 30 }
        );
        assert!(back.persist, "the earlier start is saved");
        assert_eq!(v.locked_out_for(NOW - 4970), None);
        assert!(v.enter(&pin(NOW - 4970), NOW - 4970, None).outcome.is_ok());
        assert_eq!(v.state().throttle, Throttle::default());
    }

    #[test]
    fn lockouts_double_from_the_fourth_wrong_entry_up_to_fifteen_minutes() {
        let lockouts: Vec<u64> = (1..=11).map(lockout_for).collect();
        assert_eq!(lockouts, [0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(lockout_for(u32::MAX), MAX_LOCKOUT_S);
    }

    #[test]
    fn byte_comparison_needs_the_same_length_and_bytes() {
        assert!(same_bytes(b"1234", b"1234"));
        assert!(!same_bytes(b"1234", b"1235"));
        assert!(!same_bytes(b"1234", b"12345"));
        assert!(!same_bytes(b"12345", b"1234"));
    }

    #[test]
    fn refusals_have_snake_case_wire_names() {
        for reason in [
            KeypadRefusal::Malformed,
            KeypadRefusal::WrongPin,
            KeypadRefusal::UnknownCard,
            KeypadRefusal::NotYetValid,
            KeypadRefusal::Expired,
            KeypadRefusal::Revoked,
            KeypadRefusal::AlreadyUsed,
            KeypadRefusal::NoKeypadTable,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.as_str())
            );
        }
        let line = KeypadOutcome::Refused(KeypadRefusal::LockedOut { retry_after_s: 30 }).to_json_line();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["accepted"], false);
        assert_eq!(value["reason"], "locked_out");
        assert_eq!(value["retry_after_s"], 30);
        let line = KeypadOutcome::Refused(KeypadRefusal::WrongPin).to_json_line();
        assert!(!line.contains("retry_after_s"), "{line}");
    }

    #[test]
    fn an_accepted_answer_is_exactly_the_documented_line() {
        let accepted = KeypadOutcome::Accepted(KeypadAccess {
            key_id: "key_1".into(),
            operator_id: None,
            access_type: AccessType::RollingPin,
            usage_session: 3,
        });
        assert_eq!(
            accepted.to_json_line(),
            r#"{"accepted":true,"key_id":"key_1","operator_id":null,"access_type":"rolling-pin","usage_session":3}"#
        );
        assert_eq!(
            accepted.to_string(),
            "keypad accepted key=key_1 access=rolling-pin session=3"
        );
    }
}
