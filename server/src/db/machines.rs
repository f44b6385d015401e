//! Machines (assets with a telematics unit). Each carries the sequence value of its last
//! change so phones holding keys to it learn of the change by cursor.

use super::{Ts, parsed};
use opkey_protocol::Machine;
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

const COLUMNS: &str =
    "m.id, m.organization_id, m.name, m.serial, m.unit_type, m.keypad, m.ble_public_key, m.seq";

/// A machine and the sequence value of its last change.
fn machine(row: &Row<'_>) -> rusqlite::Result<(Machine, i64)> {
    Ok((
        Machine {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            name: row.get(2)?,
            serial: row.get(3)?,
            unit_type: parsed(row, 4)?,
            keypad: parsed(row, 5)?,
            ble_public_key: row.get(6)?,
        },
        row.get(7)?,
    ))
}

pub fn insert(conn: &Connection, m: &Machine, seq: i64, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO machines (id, organization_id, name, serial, unit_type, keypad, ble_public_key, seq, created_at,
                               keypad_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8)",
        params![
            m.id,
            m.organization_id,
            m.name,
            m.serial,
            m.unit_type.as_str(),
            m.keypad.as_str(),
            m.ble_public_key,
            seq,
            Ts(now)
        ],
    )?;
    Ok(())
}

pub fn get_in_org(conn: &Connection, id: &str, organization_id: &str) -> rusqlite::Result<Option<Machine>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM machines m WHERE m.id = ?1 AND m.organization_id = ?2"
    ))?
    .query_row([id, organization_id], machine)
    .map(|(m, _)| m)
    .optional()
}

/// A machine of any organization: what a machine's own upload names itself by.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Machine>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM machines m WHERE m.id = ?1"))?
        .query_row([id], machine)
        .map(|(m, _)| m)
        .optional()
}

pub fn list_in_org(conn: &Connection, organization_id: &str) -> rusqlite::Result<Vec<Machine>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM machines m WHERE m.organization_id = ?1 ORDER BY m.created_at, m.rowid"
    ))?
    .query_map([organization_id], |r| machine(r).map(|(m, _)| m))?
    .collect()
}

/// Stores an edited name, serial and BLE key, with the sequence value of this change.
pub fn update(conn: &Connection, m: &Machine, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE machines SET name = ?2, serial = ?3, ble_public_key = ?4, seq = ?5 WHERE id = ?1",
        params![m.id, m.name, m.serial, m.ble_public_key, seq],
    )?;
    Ok(())
}

/// The version of the machine's keypad table: the change sequence value of the latest
/// change to any of its keypad entries (raised by `keys`), or of its creation.
pub fn keypad_seq(conn: &Connection, id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT keypad_seq FROM machines WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
}

/// True while any key (not deleted) refers to the machine.
pub fn has_keys(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM key_machines WHERE machine_id = ?1")?
        .exists([id])
}

pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM machines WHERE id = ?1", [id])?;
    Ok(())
}

/// Machines that the operator's live personal keys with `seq` in `(after, upto]` refer
/// to, plus machines changed after `machines_after` that any of the operator's live keys
/// refer to. Each machine once, with its sequence value.
pub fn for_operator_sync(
    conn: &Connection,
    operator_id: &str,
    after: i64,
    upto: i64,
    machines_after: i64,
) -> rusqlite::Result<Vec<(Machine, i64)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM machines m WHERE m.id IN (
             SELECT km.machine_id FROM keys k JOIN key_machines km ON km.key_id = k.id
             WHERE k.operator_id = ?1 AND k.seq > ?2 AND k.seq <= ?3 AND k.deleted_at IS NULL)
         UNION
         SELECT {COLUMNS} FROM machines m WHERE m.seq > ?4 AND EXISTS (
             SELECT 1 FROM key_machines km JOIN keys k ON k.id = km.key_id
             WHERE km.machine_id = m.id AND k.operator_id = ?1 AND k.deleted_at IS NULL)"
    ))?
    .query_map(params![operator_id, after, upto, machines_after], machine)?
    .collect()
}
