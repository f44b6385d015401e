//! Session challenges (single use, short-lived) and the access tokens they open, stored
//! as digests. Expired rows are purged as new ones are written.

use super::{Ts, opt_ts, ts};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub phone_id: String,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

pub fn insert_challenge(
    conn: &Connection,
    challenge: &str,
    phone_id: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM challenges WHERE expires_at <= ?1", params![Ts(now)])?;
    conn.execute(
        "INSERT INTO challenges (challenge, phone_id, expires_at) VALUES (?1, ?2, ?3)",
        params![challenge, phone_id, Ts(expires_at)],
    )?;
    Ok(())
}

pub fn get_challenge(conn: &Connection, challenge: &str) -> rusqlite::Result<Option<ChallengeRow>> {
    conn.query_row(
        "SELECT phone_id, expires_at, used_at FROM challenges WHERE challenge = ?1",
        [challenge],
        |r| {
            Ok(ChallengeRow {
                phone_id: r.get(0)?,
                expires_at: ts(r, 1)?,
                used_at: opt_ts(r, 2)?,
            })
        },
    )
    .optional()
}

pub fn mark_challenge_used(conn: &Connection, challenge: &str, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE challenges SET used_at = ?2 WHERE challenge = ?1",
        params![challenge, Ts(now)],
    )?;
    Ok(())
}

pub fn insert_session(
    conn: &Connection,
    token_digest: &str,
    phone_id: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![Ts(now)])?;
    conn.execute(
        "INSERT INTO sessions (token_digest, phone_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token_digest, phone_id, Ts(expires_at)],
    )?;
    Ok(())
}

/// The phone id and expiry of the session with this token digest.
pub fn session(conn: &Connection, token_digest: &str) -> rusqlite::Result<Option<(String, OffsetDateTime)>> {
    conn.prepare_cached("SELECT phone_id, expires_at FROM sessions WHERE token_digest = ?1")?
        .query_row([token_digest], |r| Ok((r.get(0)?, ts(r, 1)?)))
        .optional()
}
