//! Issued grants (`grants`, one row per phone, key and chunk of at most 8 machines), the
//! per-phone watermark of what was last checked (`phones.grants_seq`), and each key's
//! grant horizon (`keys.grants_until`: the latest end of any grant ever issued for it).

use super::{Ts, id_list, parsed, ts};
use opkey_protocol::AccessType;
use opkey_protocol::api::GrantRecord;
use opkey_protocol::encoding::b64;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// A key that may need grants for a phone, with the machines it opens that have a
/// registered BLE key (in the admin's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key_id: String,
    pub access_type: AccessType,
    pub operator_id: Option<String>,
    pub version: u64,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub revoked: bool,
    pub deleted: bool,
    pub ble_machine_ids: Vec<String>,
    /// The sequence value of the key's last change.
    pub seq: i64,
    /// The latest sequence value of a change to any of those machines.
    pub machines_seq: i64,
}

/// The keys of `operator_id` whose grants for `phone_id` may be out of date: changed
/// after `since`, opening a machine changed after `since`, or with a grant due for
/// renewal at `now`. In id order, the order of the grants table's key, so that a first
/// sync's thousands of new grants are inserted side by side.
pub fn candidates(
    conn: &Connection,
    phone_id: &str,
    operator_id: &str,
    since: i64,
    now: OffsetDateTime,
) -> rusqlite::Result<Vec<Candidate>> {
    // The machine branch starts from the changed machines (index machines(seq)), never
    // from the operator's keys, so an idle sync walks nothing. From 0 every key of the
    // operator is a candidate by its own seq, and the branch would walk every machine.
    let changed_machines = if since > 0 {
        "UNION SELECT km.key_id FROM key_machines km
          WHERE km.machine_id IN (SELECT id FROM machines WHERE seq > ?2)
            AND EXISTS (SELECT 1 FROM keys k WHERE k.id = km.key_id AND k.operator_id = ?1)"
    } else {
        ""
    };
    conn.prepare_cached(&format!(
        "WITH candidate(id) AS (
             SELECT id FROM keys WHERE operator_id = ?1 AND seq > ?2
             {changed_machines}
             UNION SELECT key_id FROM grants WHERE phone_id = ?3 AND renew_after <= ?4)
         SELECT k.id, k.access_type, k.operator_id, k.version, k.valid_from, k.valid_to, k.revoked,
                k.deleted_at IS NOT NULL,
                group_concat(m.id, ',' ORDER BY km.position),
                k.seq,
                coalesce(max(m.seq), 0)
         FROM candidate c JOIN keys k ON k.id = c.id
         LEFT JOIN key_machines km ON km.key_id = k.id
         LEFT JOIN machines m ON m.id = km.machine_id AND m.ble_public_key IS NOT NULL
         GROUP BY k.id
         ORDER BY k.id"
    ))?
    .query_map(params![operator_id, since, phone_id, Ts(now)], |r| {
        Ok(Candidate {
            key_id: r.get(0)?,
            access_type: parsed(r, 1)?,
            operator_id: r.get(2)?,
            version: r.get::<_, i64>(3)? as u64,
            valid_from: ts(r, 4)?,
            valid_to: ts(r, 5)?,
            revoked: r.get(6)?,
            deleted: r.get(7)?,
            ble_machine_ids: id_list(r.get(8)?),
            seq: r.get(9)?,
            machines_seq: r.get(10)?,
        })
    })?
    .collect()
}

/// What is stored about one issued grant, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub chunk: u32,
    pub serial: u32,
    pub machine_ids: Vec<String>,
    pub renew_after: OffsetDateTime,
    /// The sequence value it was issued with.
    pub seq: i64,
}

/// The phone's grants of one key, by chunk.
pub fn stored_for_key(conn: &Connection, phone_id: &str, key_id: &str) -> rusqlite::Result<Vec<Stored>> {
    conn.prepare_cached(
        "SELECT chunk, serial, machine_ids, renew_after, seq FROM grants
         WHERE phone_id = ?1 AND key_id = ?2 ORDER BY chunk",
    )?
    .query_map([phone_id, key_id], |r| {
        Ok(Stored {
            chunk: r.get(0)?,
            serial: r.get(1)?,
            machine_ids: id_list(r.get(2)?),
            renew_after: ts(r, 3)?,
            seq: r.get(4)?,
        })
    })?
    .collect()
}

/// One grant to store.
#[derive(Debug)]
pub struct NewGrant<'a> {
    pub phone_id: &'a str,
    pub key_id: &'a str,
    pub chunk: u32,
    pub serial: u32,
    pub machine_ids: &'a [String],
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub renew_after: OffsetDateTime,
    pub bytes: &'a [u8],
    pub seq: i64,
}

/// Stores a grant in place of the phone's earlier one for the same key and chunk.
pub fn upsert(conn: &Connection, g: &NewGrant<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO grants (phone_id, key_id, chunk, serial, machine_ids, valid_from, valid_to,
                                        issued_at, renew_after, bytes, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        g.phone_id,
        g.key_id,
        g.chunk,
        g.serial,
        g.machine_ids.join(","),
        Ts(g.valid_from),
        Ts(g.valid_to),
        Ts(g.issued_at),
        Ts(g.renew_after),
        g.bytes,
        g.seq
    ])?;
    Ok(())
}

/// Forgets the phone's grants of a key from chunk `from` on.
pub fn delete_from_chunk(conn: &Connection, phone_id: &str, key_id: &str, from: u32) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM grants WHERE phone_id = ?1 AND key_id = ?2 AND chunk >= ?3")?
        .execute(params![phone_id, key_id, from])?;
    Ok(())
}

/// Raises the grant horizon of every key the phone got grants for with `seq` to the end
/// of those grants (never lowers it).
pub fn raise_horizons(conn: &Connection, phone_id: &str, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE keys SET grants_until = g.valid_to
         FROM (SELECT key_id, max(valid_to) AS valid_to FROM grants
               WHERE phone_id = ?1 AND seq = ?2 GROUP BY key_id) AS g
         WHERE keys.id = g.key_id AND (keys.grants_until IS NULL OR keys.grants_until < g.valid_to)",
    )?
    .execute(params![phone_id, seq])?;
    Ok(())
}

/// The latest end of any grant ever issued for the key.
pub fn horizon(conn: &Connection, key_id: &str) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(conn
        .prepare_cached("SELECT grants_until FROM keys WHERE id = ?1")?
        .query_row([key_id], |r| r.get::<_, Option<Ts>>(0))
        .optional()?
        .flatten()
        .map(|t| t.0))
}

/// The change sequence value up to which the phone's grants were checked.
pub fn watermark(conn: &Connection, phone_id: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT grants_seq FROM phones WHERE id = ?1")?
        .query_row([phone_id], |r| r.get(0))
}

pub fn set_watermark(conn: &Connection, phone_id: &str, seq: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE phones SET grants_seq = ?2 WHERE id = ?1 AND grants_seq <> ?2")?
        .execute(params![phone_id, seq])?;
    Ok(())
}

/// The phone's grants with `seq` in `(after, upto]`, oldest first, each with its seq.
pub fn for_phone_sync(
    conn: &Connection,
    phone_id: &str,
    after: i64,
    upto: i64,
) -> rusqlite::Result<Vec<(GrantRecord, i64)>> {
    conn.prepare_cached(
        "SELECT key_id, serial, machine_ids, valid_from, valid_to, bytes, seq FROM grants
         WHERE phone_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq, key_id, chunk",
    )?
    .query_map(params![phone_id, after, upto], |r| {
        Ok((
            GrantRecord {
                key_id: r.get(0)?,
                serial: r.get(1)?,
                machine_ids: id_list(r.get(2)?),
                valid_from: ts(r, 3)?,
                valid_to: ts(r, 4)?,
                grant: b64(&r.get::<_, Vec<u8>>(5)?),
            },
            r.get(6)?,
        ))
    })?
    .collect()
}

/// The operator's Digital Keys that are live (not deleted, not revoked) and whose grants
/// have not all expired at `now`: (id, version, machine ids).
pub fn keys_with_live_grants(
    conn: &Connection,
    operator_id: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<Vec<(String, u64, Vec<String>)>> {
    conn.prepare_cached(
        "SELECT k.id, k.version,
                (SELECT group_concat(km.machine_id, ',' ORDER BY km.position) FROM key_machines km WHERE km.key_id = k.id)
         FROM keys k
         WHERE k.operator_id = ?1 AND k.access_type = ?2 AND k.deleted_at IS NULL AND k.revoked = 0
           AND k.grants_until > ?3",
    )?
    .query_map(
        params![operator_id, AccessType::DigitalKey.as_str(), Ts(now)],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, id_list(r.get(2)?))),
    )?
    .collect()
}
