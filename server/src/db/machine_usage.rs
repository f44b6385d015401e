//! Usage sessions machines report themselves, keyed by (machine, usage-session counter) so a
//! re-sent session is never stored twice, and the nonces that keep a captured upload from
//! being replayed.

use super::Ts;
use opkey_protocol::api::{MachineUsageSession, SESSION_OPEN};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// What storing one session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New.
    Accepted,
    /// It was stored open and is now closed.
    Updated,
    /// Already stored as sent (or stored closed).
    Duplicate,
}

/// Forgets nonces no acceptable upload can carry any more.
pub fn prune_nonces(conn: &Connection, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM machine_nonces WHERE expires_at < ?1")?
        .execute([Ts(now)])?;
    Ok(())
}

/// Records a nonce; false when this machine already used it.
pub fn use_nonce(
    conn: &Connection,
    machine_id: &str,
    nonce: &str,
    expires_at: OffsetDateTime,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO machine_nonces (machine_id, nonce, expires_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![machine_id, nonce, Ts(expires_at)])?;
    Ok(changed == 1)
}

/// Stores a session unless it is stored already; closes a stored open one.
pub fn store(
    conn: &Connection,
    machine_id: &str,
    organization_id: &str,
    s: &MachineUsageSession,
    received_at: OffsetDateTime,
) -> rusqlite::Result<Stored> {
    let stored: Option<String> = conn
        .prepare_cached(
            "SELECT ended_by FROM machine_usage_sessions WHERE machine_id = ?1 AND usage_session = ?2",
        )?
        .query_row(params![machine_id, s.usage_session], |r| r.get(0))
        .optional()?;
    match stored {
        None => {
            conn.prepare_cached(
                "INSERT INTO machine_usage_sessions (machine_id, usage_session, organization_id, key_id,
                     operator_id, started_at, ended_at, ended_by, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                machine_id,
                s.usage_session,
                organization_id,
                s.key_id,
                s.operator_id,
                Ts(s.started_at),
                s.ended_at.map(Ts),
                s.ended_by,
                Ts(received_at)
            ])?;
            Ok(Stored::Accepted)
        }
        Some(ended_by) if ended_by == SESSION_OPEN && s.ended_by != SESSION_OPEN => {
            conn.prepare_cached(
                "UPDATE machine_usage_sessions SET ended_at = ?3, ended_by = ?4
                 WHERE machine_id = ?1 AND usage_session = ?2",
            )?
            .execute(params![
                machine_id,
                s.usage_session,
                s.ended_at.map(Ts),
                s.ended_by
            ])?;
            Ok(Stored::Updated)
        }
        Some(_) => Ok(Stored::Duplicate),
    }
}
