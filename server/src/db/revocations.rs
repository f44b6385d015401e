//! Revocation entries (what each machine must refuse, and until when) and the latest
//! signed list of each machine. A list takes the next value of the change sequence
//! (`seq`) so phones holding keys to the machine learn it by cursor.

use super::Ts;
use opkey_protocol::AccessType;
use opkey_protocol::api::RevocationRecord;
use opkey_protocol::ble::Revocation;
use opkey_protocol::encoding::b64;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// Records that `machine_id` must refuse `key_id` below `min_serial` until
/// `needed_until`. An existing entry only ever tightens: the higher `min_serial` and the
/// later `needed_until` win.
pub fn upsert_entry(
    conn: &Connection,
    machine_id: &str,
    key_id: &str,
    min_serial: u32,
    needed_until: OffsetDateTime,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO revocation_entries (machine_id, key_id, min_serial, needed_until, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (machine_id, key_id) DO UPDATE SET
             min_serial = max(min_serial, excluded.min_serial),
             needed_until = max(needed_until, excluded.needed_until),
             updated_at = excluded.updated_at",
    )?
    .execute(params![machine_id, key_id, min_serial, Ts(needed_until), Ts(now)])?;
    Ok(())
}

/// Drops the machine's entries whose grants have all expired at `now`.
pub fn prune(conn: &Connection, machine_id: &str, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM revocation_entries WHERE machine_id = ?1 AND needed_until <= ?2")?
        .execute(params![machine_id, Ts(now)])?;
    Ok(())
}

/// At most `cap` of the machine's entries: those whose refused grants expire last, the
/// most recently changed first among equals.
pub fn entries(conn: &Connection, machine_id: &str, cap: usize) -> rusqlite::Result<Vec<Revocation>> {
    conn.prepare_cached(
        "SELECT key_id, min_serial FROM revocation_entries WHERE machine_id = ?1
         ORDER BY needed_until DESC, updated_at DESC, key_id LIMIT ?2",
    )?
    .query_map(params![machine_id, cap as i64], |r| {
        Ok(Revocation {
            key_id: r.get(0)?,
            min_serial: r.get(1)?,
        })
    })?
    .collect()
}

/// The machine's latest list: (sequence, bytes).
pub fn latest(conn: &Connection, machine_id: &str) -> rusqlite::Result<Option<(u32, Vec<u8>)>> {
    conn.prepare_cached("SELECT sequence, bytes FROM revocation_lists WHERE machine_id = ?1")?
        .query_row([machine_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Stores the machine's new latest list.
pub fn store(
    conn: &Connection,
    machine_id: &str,
    sequence: u32,
    issued_at: OffsetDateTime,
    bytes: &[u8],
    seq: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO revocation_lists (machine_id, sequence, issued_at, bytes, seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![machine_id, sequence, Ts(issued_at), bytes, seq])?;
    Ok(())
}

/// Forgets a machine's entries and list (the machine is being deleted).
pub fn delete_machine(conn: &Connection, machine_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM revocation_entries WHERE machine_id = ?1",
        [machine_id],
    )?;
    conn.execute("DELETE FROM revocation_lists WHERE machine_id = ?1", [machine_id])?;
    Ok(())
}

/// Whether the machine takes revocation lists (it has a registered BLE key): `None` when
/// not, else whether it has a keypad.
pub fn list_target(conn: &Connection, machine_id: &str) -> rusqlite::Result<Option<bool>> {
    conn.prepare_cached("SELECT keypad <> 'none' FROM machines WHERE id = ?1 AND ble_public_key IS NOT NULL")?
        .query_row([machine_id], |r| r.get(0))
        .optional()
}

/// The latest lists a phone of `operator_id` carries: those of machines opened by its
/// Digital Keys with `seq` in `(after, keys_upto]` (keys this page returns), plus lists
/// with `seq` in `(after, upto]` of machines any of its Digital Keys open. Each machine
/// once, with the list's seq.
pub fn for_operator_sync(
    conn: &Connection,
    operator_id: &str,
    after: i64,
    keys_upto: i64,
    upto: i64,
) -> rusqlite::Result<Vec<(RevocationRecord, i64)>> {
    conn.prepare_cached(
        "SELECT r.machine_id, r.sequence, r.bytes, r.seq FROM revocation_lists r WHERE r.machine_id IN (
             SELECT km.machine_id FROM keys k JOIN key_machines km ON km.key_id = k.id
             WHERE k.operator_id = ?1 AND k.access_type = ?5 AND k.seq > ?2 AND k.seq <= ?3)
         UNION
         SELECT r.machine_id, r.sequence, r.bytes, r.seq FROM revocation_lists r
         WHERE r.seq > ?2 AND r.seq <= ?4 AND EXISTS (
             SELECT 1 FROM key_machines km JOIN keys k ON k.id = km.key_id
             WHERE km.machine_id = r.machine_id AND k.operator_id = ?1 AND k.access_type = ?5)",
    )?
    .query_map(
        params![
            operator_id,
            after,
            keys_upto,
            upto,
            AccessType::DigitalKey.as_str()
        ],
        |r| {
            Ok((
                RevocationRecord {
                    machine_id: r.get(0)?,
                    sequence: r.get(1)?,
                    list: b64(&r.get::<_, Vec<u8>>(2)?),
                },
                r.get(3)?,
            ))
        },
    )?
    .collect()
}
