//! Keys and the machines they open (`key_machines`, in the order the admin gave them).
//!
//! Every change takes the next value of the change sequence into the key's `seq`; a
//! deleted key stays as a tombstone (`deleted_at` set, machines unlinked) so phones
//! learn of the deletion, and stops counting anywhere else.
//!
//! Keys on keypads (every access type but Digital Key) also raise the keypad table
//! version (`machines.keypad_seq`) of each of their machines on every change, and keep
//! `keypad_until`, the latest end date any keypad table carried for them. Rolling PIN
//! seeds and Static PINs are stored only sealed (`keypad::secrets`); these queries move
//! the sealed bytes and never see a secret in the clear.

use super::{Ts, id_list, opt_ts, parsed, ts};
use opkey_protocol::model::{RollingPinInfo, SlotClass, Validity};
use opkey_protocol::pin::KeypadSlot;
use opkey_protocol::{AccessType, Key};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fmt;
use time::OffsetDateTime;

const COLUMNS: &str = "k.id, k.organization_id, k.access_type, k.operator_id, k.valid_from, k.valid_to, \
     k.description, k.version, k.revoked, k.card_id, \
     (SELECT group_concat(km.machine_id, ',' ORDER BY km.position) FROM key_machines km WHERE km.key_id = k.id), \
     k.pin_slot, k.pin_algorithm, k.pin_digits, k.pin_period_s";
/// How many columns [`COLUMNS`] selects.
const COLUMN_COUNT: usize = 15;

/// True for access types a machine's keypad or card reader checks.
pub fn on_keypad(access_type: AccessType) -> bool {
    access_type != AccessType::DigitalKey
}

fn conversion(idx: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Integer,
        Box::<dyn std::error::Error + Send + Sync>::from(message),
    )
}

/// The Rolling PIN settings of a key row (`None` for other keys).
fn rolling_pin(row: &Row<'_>, access_type: AccessType) -> rusqlite::Result<Option<RollingPinInfo>> {
    let Some(slot) = row.get::<_, Option<i64>>(11)? else {
        return Ok(None);
    };
    if access_type != AccessType::RollingPin {
        return Ok(None);
    }
    let slot = u16::try_from(slot)
        .ok()
        .and_then(|s| KeypadSlot::new(s).ok())
        .ok_or_else(|| conversion(11, format!("keypad slot {slot} is out of range")))?;
    let digits: i64 = row.get(13)?;
    let period_s: i64 = row.get(14)?;
    Ok(Some(RollingPinInfo {
        slot,
        algorithm: parsed(row, 12)?,
        digits: u8::try_from(digits).map_err(|_| conversion(13, format!("{digits} PIN digits")))?,
        period_s: u32::try_from(period_s).map_err(|_| conversion(14, format!("PIN period {period_s}")))?,
    }))
}

fn key(row: &Row<'_>) -> rusqlite::Result<Key> {
    let access_type: AccessType = parsed(row, 2)?;
    Ok(Key {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        access_type,
        operator_id: row.get(3)?,
        validity: Validity {
            valid_from: ts(row, 4)?,
            valid_to: ts(row, 5)?,
        },
        description: row.get(6)?,
        version: row.get::<_, i64>(7)? as u64,
        revoked: row.get(8)?,
        card_id: row.get(9)?,
        machine_ids: id_list(row.get(10)?),
        rolling_pin: rolling_pin(row, access_type)?,
    })
}

/// A key's PIN secrets as stored: sealed, never in the clear. `Debug` shows lengths only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SealedPins {
    /// The Rolling PIN seed, sealed.
    pub seed: Option<Vec<u8>>,
    /// The Static PIN, sealed.
    pub static_pin: Option<Vec<u8>>,
    /// The Static PIN's tag (uniqueness checks).
    pub static_pin_tag: Option<Vec<u8>>,
}

impl fmt::Debug for SealedPins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedPins")
            .field("seed", &self.seed.as_ref().map(Vec::len))
            .field("static_pin", &self.static_pin.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

pub fn slot_class_str(class: SlotClass) -> &'static str {
    match class {
        SlotClass::StaticPin => "static-pin",
        SlotClass::KeyCard => "key-card",
        SlotClass::IpafCard => "ipaf-card",
    }
}

pub fn insert(
    conn: &Connection,
    k: &Key,
    pins: &SealedPins,
    seq: i64,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    let pin = k.rolling_pin.as_ref();
    conn.prepare_cached(
        "INSERT INTO keys (id, organization_id, operator_id, access_type, slot_class, valid_from, valid_to,
                           description, card_id, version, revoked, seq, created_at,
                           pin_slot, pin_algorithm, pin_digits, pin_period_s,
                           pin_seed_sealed, static_pin_sealed, static_pin_tag, keypad_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        k.id,
        k.organization_id,
        k.operator_id,
        k.access_type.as_str(),
        k.access_type.device_slot_class().map(slot_class_str),
        Ts(k.validity.valid_from),
        Ts(k.validity.valid_to),
        k.description,
        k.card_id,
        k.version as i64,
        k.revoked,
        seq,
        Ts(now),
        pin.map(|p| p.slot.get()),
        pin.map(|p| p.algorithm.as_str()),
        pin.map(|p| p.digits),
        pin.map(|p| p.period_s),
        pins.seed,
        pins.static_pin,
        pins.static_pin_tag,
        on_keypad(k.access_type).then_some(Ts(k.validity.valid_to)),
    ])?;
    let mut link =
        conn.prepare_cached("INSERT INTO key_machines (key_id, machine_id, position) VALUES (?1, ?2, ?3)")?;
    for (position, machine_id) in k.machine_ids.iter().enumerate() {
        link.execute(params![k.id, machine_id, position as i64])?;
    }
    touch_keypads(conn, &k.id, seq)
}

/// Raises the keypad table version of the key's machines to `seq`, for a key on keypads.
fn touch_keypads(conn: &Connection, key_id: &str, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE machines SET keypad_seq = max(keypad_seq, ?2)
         WHERE id IN (SELECT machine_id FROM key_machines WHERE key_id = ?1)
           AND EXISTS (SELECT 1 FROM keys WHERE id = ?1 AND access_type <> ?3)",
    )?
    .execute(params![key_id, seq, AccessType::DigitalKey.as_str()])?;
    Ok(())
}

/// A key of the organization that is not deleted.
pub fn get_in_org(conn: &Connection, id: &str, organization_id: &str) -> rusqlite::Result<Option<Key>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM keys k WHERE k.id = ?1 AND k.organization_id = ?2 AND k.deleted_at IS NULL"
    ))?
    .query_row([id, organization_id], key)
    .optional()
}

/// The organization's keys (not deleted), optionally only one operator's or only those
/// opening one machine.
pub fn list_in_org(
    conn: &Connection,
    organization_id: &str,
    operator_id: Option<&str>,
    machine_id: Option<&str>,
) -> rusqlite::Result<Vec<Key>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM keys k
         WHERE k.organization_id = ?1 AND k.deleted_at IS NULL
           AND (?2 IS NULL OR k.operator_id = ?2)
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM key_machines x WHERE x.key_id = k.id AND x.machine_id = ?3))
         ORDER BY k.created_at, k.rowid"
    ))?
    .query_map(params![organization_id, operator_id, machine_id], key)?
    .collect()
}

/// Ids of the operator's keys (not deleted) in one organization.
pub fn ids_of_operator_in_org(
    conn: &Connection,
    operator_id: &str,
    organization_id: &str,
) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT id FROM keys WHERE operator_id = ?1 AND organization_id = ?2 AND deleted_at IS NULL",
    )?
    .query_map([operator_id, organization_id], |r| r.get(0))?
    .collect()
}

/// Stores an edited end date and description, bumping version and seq (and, for a key on
/// keypads, its machines' keypad table versions and its keypad horizon).
pub fn update(conn: &Connection, k: &Key, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE keys SET valid_to = ?2, description = ?3, revoked = ?4, version = ?5, seq = ?6,
             keypad_until = CASE WHEN keypad_until IS NULL THEN ?7 ELSE max(keypad_until, ?7) END
         WHERE id = ?1",
        params![
            k.id,
            Ts(k.validity.valid_to),
            k.description,
            k.revoked,
            k.version as i64,
            seq,
            on_keypad(k.access_type).then_some(Ts(k.validity.valid_to)),
        ],
    )?;
    touch_keypads(conn, &k.id, seq)
}

/// Gives the key a new version (superseding its grants), bumping seq.
pub fn set_version(conn: &Connection, id: &str, version: u64, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE keys SET version = ?2, seq = ?3 WHERE id = ?1")?
        .execute(params![id, version as i64, seq])?;
    touch_keypads(conn, id, seq)
}

/// Turns the key into a tombstone.
pub fn tombstone(conn: &Connection, id: &str, seq: i64, now: OffsetDateTime) -> rusqlite::Result<()> {
    touch_keypads(conn, id, seq)?;
    conn.prepare_cached("DELETE FROM key_machines WHERE key_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("UPDATE keys SET deleted_at = ?2, seq = ?3 WHERE id = ?1")?
        .execute(params![id, Ts(now), seq])?;
    Ok(())
}

/// How many keys of this slot class the machine holds at `now`: not deleted, not
/// revoked and not yet expired. `except` leaves one key out (the one being edited).
pub fn count_in_slot_class(
    conn: &Connection,
    machine_id: &str,
    class: SlotClass,
    now: OffsetDateTime,
    except: Option<&str>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "SELECT count(*) FROM key_machines km JOIN keys k ON k.id = km.key_id
         WHERE km.machine_id = ?1 AND k.slot_class = ?2 AND k.revoked = 0 AND k.valid_to > ?3
           AND (?4 IS NULL OR k.id <> ?4)",
    )?
    .query_row(params![machine_id, slot_class_str(class), Ts(now), except], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// The id of a key on the machine, of the same slot class, holding this card at `now`.
pub fn card_holder(
    conn: &Connection,
    machine_id: &str,
    class: SlotClass,
    card_id: &str,
    now: OffsetDateTime,
    except: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT k.id FROM key_machines km JOIN keys k ON k.id = km.key_id
         WHERE km.machine_id = ?1 AND k.slot_class = ?2 AND k.card_id = ?3 AND k.revoked = 0
           AND k.valid_to > ?4 AND (?5 IS NULL OR k.id <> ?5)
         LIMIT 1",
    )?
    .query_row(
        params![machine_id, slot_class_str(class), card_id, Ts(now), except],
        |r| r.get(0),
    )
    .optional()
}

/// One change in an operator's sync feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Upserted(Key),
    Deleted(String),
}

/// The operator's personal keys (all organizations) changed after `cursor`, oldest
/// change first, at most `limit`, each with its sequence value.
pub fn changes_for_operator(
    conn: &Connection,
    operator_id: &str,
    cursor: i64,
    limit: u32,
) -> rusqlite::Result<Vec<(i64, KeyChange)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, k.seq, k.deleted_at IS NOT NULL FROM keys k
         WHERE k.operator_id = ?1 AND k.seq > ?2 ORDER BY k.seq LIMIT ?3"
    ))?
    .query_map(params![operator_id, cursor, limit], |r| {
        let seq: i64 = r.get(COLUMN_COUNT)?;
        let deleted: bool = r.get(COLUMN_COUNT + 1)?;
        let change = if deleted {
            KeyChange::Deleted(r.get(0)?)
        } else {
            KeyChange::Upserted(key(r)?)
        };
        Ok((seq, change))
    })?
    .collect()
}

/// The latest valid_to any keypad table carried for the key (`None` for a Digital Key).
pub fn keypad_horizon(conn: &Connection, key_id: &str) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(conn
        .prepare_cached("SELECT keypad_until FROM keys WHERE id = ?1")?
        .query_row([key_id], |r| opt_ts(r, 0))
        .optional()?
        .flatten())
}

/// The key's sealed PIN secrets (all `None` for a key without any).
pub fn sealed_pins(conn: &Connection, key_id: &str) -> rusqlite::Result<SealedPins> {
    Ok(conn
        .prepare_cached("SELECT pin_seed_sealed, static_pin_sealed, static_pin_tag FROM keys WHERE id = ?1")?
        .query_row([key_id], |r| {
            Ok(SealedPins {
                seed: r.get(0)?,
                static_pin: r.get(1)?,
                static_pin_tag: r.get(2)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Keypad slots held on the machine at `now` by live Rolling PIN keys (not deleted, not
/// revoked, not expired); `except` leaves one key out.
pub fn held_slots(
    conn: &Connection,
    machine_id: &str,
    now: OffsetDateTime,
    except: Option<&str>,
) -> rusqlite::Result<Vec<u16>> {
    conn.prepare_cached(
        "SELECT k.pin_slot FROM key_machines km JOIN keys k ON k.id = km.key_id
         WHERE km.machine_id = ?1 AND k.access_type = ?2 AND k.pin_slot IS NOT NULL AND k.revoked = 0
           AND k.valid_to > ?3 AND (?4 IS NULL OR k.id <> ?4)",
    )?
    .query_map(
        params![machine_id, AccessType::RollingPin.as_str(), Ts(now), except],
        |r| r.get(0),
    )?
    .collect()
}

/// The live Rolling PIN key holding `slot` on the machine at `now`, other than `except`.
pub fn slot_holder(
    conn: &Connection,
    machine_id: &str,
    slot: u16,
    now: OffsetDateTime,
    except: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT k.id FROM key_machines km JOIN keys k ON k.id = km.key_id
         WHERE km.machine_id = ?1 AND k.access_type = ?2 AND k.pin_slot = ?3 AND k.revoked = 0
           AND k.valid_to > ?4 AND k.id <> ?5
         LIMIT 1",
    )?
    .query_row(
        params![machine_id, AccessType::RollingPin.as_str(), slot, Ts(now), except],
        |r| r.get(0),
    )
    .optional()
}

/// The live Static PIN key on the machine at `now` whose PIN has this tag, other than `except`.
pub fn static_pin_holder(
    conn: &Connection,
    machine_id: &str,
    tag: &[u8],
    now: OffsetDateTime,
    except: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT k.id FROM key_machines km JOIN keys k ON k.id = km.key_id
         WHERE km.machine_id = ?1 AND k.access_type = ?2 AND k.static_pin_tag = ?3 AND k.revoked = 0
           AND k.valid_to > ?4 AND (?5 IS NULL OR k.id <> ?5)
         LIMIT 1",
    )?
    .query_row(
        params![machine_id, AccessType::StaticPin.as_str(), tag, Ts(now), except],
        |r| r.get(0),
    )
    .optional()
}

/// Everything the machine's keypad and card reader check at `now`: its live keys (not
/// deleted, not revoked, not expired) of every access type but Digital Key, oldest first,
/// each with its sealed secrets.
pub fn on_machine_keypad(
    conn: &Connection,
    machine_id: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<Vec<(Key, SealedPins)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, k.pin_seed_sealed, k.static_pin_sealed FROM key_machines x
         JOIN keys k ON k.id = x.key_id
         WHERE x.machine_id = ?1 AND k.access_type <> ?2 AND k.revoked = 0 AND k.valid_to > ?3
           AND k.deleted_at IS NULL
         ORDER BY k.created_at, k.rowid"
    ))?
    .query_map(
        params![machine_id, AccessType::DigitalKey.as_str(), Ts(now)],
        |r| {
            Ok((
                key(r)?,
                SealedPins {
                    seed: r.get(COLUMN_COUNT)?,
                    static_pin: r.get(COLUMN_COUNT + 1)?,
                    static_pin_tag: None,
                },
            ))
        },
    )?
    .collect()
}
