//! Keys and the machines they open (`key_machines`, in the order the admin gave them).
//!
//! Every change takes the next value of the change sequence into the key's `seq`; a
//! deleted key stays as a tombstone (`deleted_at` set, machines unlinked) so phones
//! learn of the deletion, and stops counting anywhere else.

use super::{Ts, id_list, parsed, ts};
use opkey_protocol::Key;
use opkey_protocol::model::{SlotClass, Validity};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

const COLUMNS: &str = "k.id, k.organization_id, k.access_type, k.operator_id, k.valid_from, k.valid_to, \
     k.description, k.version, k.revoked, k.card_id, \
     (SELECT group_concat(km.machine_id, ',' ORDER BY km.position) FROM key_machines km WHERE km.key_id = k.id)";

fn key(row: &Row<'_>) -> rusqlite::Result<Key> {
    Ok(Key {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        access_type: parsed(row, 2)?,
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
        rolling_pin: None,
    })
}

pub fn slot_class_str(class: SlotClass) -> &'static str {
    match class {
        SlotClass::StaticPin => "static-pin",
        SlotClass::KeyCard => "key-card",
        SlotClass::IpafCard => "ipaf-card",
    }
}

pub fn insert(conn: &Connection, k: &Key, seq: i64, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO keys (id, organization_id, operator_id, access_type, slot_class, valid_from, valid_to,
                           description, card_id, version, revoked, seq, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
        Ts(now)
    ])?;
    let mut link =
        conn.prepare_cached("INSERT INTO key_machines (key_id, machine_id, position) VALUES (?1, ?2, ?3)")?;
    for (position, machine_id) in k.machine_ids.iter().enumerate() {
        link.execute(params![k.id, machine_id, position as i64])?;
    }
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

/// Stores an edited end date and description, bumping version and seq.
pub fn update(conn: &Connection, k: &Key, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE keys SET valid_to = ?2, description = ?3, revoked = ?4, version = ?5, seq = ?6 WHERE id = ?1",
        params![
            k.id,
            Ts(k.validity.valid_to),
            k.description,
            k.revoked,
            k.version as i64,
            seq
        ],
    )?;
    Ok(())
}

/// Gives the key a new version (superseding its grants), bumping seq.
pub fn set_version(conn: &Connection, id: &str, version: u64, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE keys SET version = ?2, seq = ?3 WHERE id = ?1")?
        .execute(params![id, version as i64, seq])?;
    Ok(())
}

/// Turns the key into a tombstone.
pub fn tombstone(conn: &Connection, id: &str, seq: i64, now: OffsetDateTime) -> rusqlite::Result<()> {
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
        let seq: i64 = r.get(11)?;
        let deleted: bool = r.get(12)?;
        let change = if deleted {
            KeyChange::Deleted(r.get(0)?)
        } else {
            KeyChange::Upserted(key(r)?)
        };
        Ok((seq, change))
    })?
    .collect()
}
