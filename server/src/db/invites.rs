//! Invites: single-use, expiring enrollments of a phone for an operator. Only SHA-256
//! digests of the token and of the normalised short code are stored, and the short code
//! sealed under the secrets key (for the invite's landing page).

use super::{Ts, opt_ts, ts};
use opkey_protocol::api::{InviteStatus, InviteSummary};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    pub id: String,
    pub operator_id: String,
    pub organization_id: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub redeemed_at: Option<OffsetDateTime>,
    pub redeemed_phone_id: Option<String>,
    pub revoked_at: Option<OffsetDateTime>,
    pub sms_id: Option<String>,
}

impl InviteRow {
    pub fn status_at(&self, now: OffsetDateTime) -> InviteStatus {
        if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.redeemed_at.is_some() {
            InviteStatus::Redeemed
        } else if now >= self.expires_at {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        }
    }

    pub fn summary_at(&self, now: OffsetDateTime) -> InviteSummary {
        InviteSummary {
            id: self.id.clone(),
            status: self.status_at(now),
            expires_at: self.expires_at,
            sms_id: self.sms_id.clone(),
        }
    }
}

const COLUMNS: &str = "id, operator_id, organization_id, created_at, expires_at, redeemed_at, \
                       redeemed_phone_id, revoked_at, sms_id";

fn invite(row: &Row<'_>) -> rusqlite::Result<InviteRow> {
    Ok(InviteRow {
        id: row.get(0)?,
        operator_id: row.get(1)?,
        organization_id: row.get(2)?,
        created_at: ts(row, 3)?,
        expires_at: ts(row, 4)?,
        redeemed_at: opt_ts(row, 5)?,
        redeemed_phone_id: row.get(6)?,
        revoked_at: opt_ts(row, 7)?,
        sms_id: row.get(8)?,
    })
}

/// Stores a new invite: the digests of its secrets and its short code sealed.
pub fn insert(
    conn: &Connection,
    invite: &InviteRow,
    token_digest: &str,
    code_digest: &str,
    code_sealed: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO invites (id, operator_id, organization_id, token_digest, code_digest, created_at,
                              expires_at, code_sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        invite.id,
        invite.operator_id,
        invite.organization_id,
        token_digest,
        code_digest,
        Ts(invite.created_at),
        Ts(invite.expires_at),
        code_sealed
    ])?;
    Ok(())
}

/// The invite's sealed short code; `None` for an invite issued before codes were kept.
pub fn sealed_code(conn: &Connection, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT code_sealed FROM invites WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()
        .map(Option::flatten)
}

pub fn by_token_digest(conn: &Connection, digest: &str) -> rusqlite::Result<Option<InviteRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM invites WHERE token_digest = ?1"))?
        .query_row([digest], invite)
        .optional()
}

pub fn by_code_digest(conn: &Connection, digest: &str) -> rusqlite::Result<Option<InviteRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM invites WHERE code_digest = ?1"))?
        .query_row([digest], invite)
        .optional()
}

/// The operator's most recent invite, from any organization.
pub fn latest_of_operator(conn: &Connection, operator_id: &str) -> rusqlite::Result<Option<InviteRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM invites WHERE operator_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"
    ))?
    .query_row([operator_id], invite)
    .optional()
}

pub fn mark_redeemed(
    conn: &Connection,
    id: &str,
    phone_id: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE invites SET redeemed_at = ?3, redeemed_phone_id = ?2 WHERE id = ?1",
        params![id, phone_id, Ts(now)],
    )?;
    Ok(())
}

pub fn set_sms_id(conn: &Connection, id: &str, sms_id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE invites SET sms_id = ?2 WHERE id = ?1")?
        .execute([id, sms_id])?;
    Ok(())
}

/// Revokes the operator's invites that could still be redeemed (from any organization,
/// or only from `organization_id` when given).
pub fn revoke_pending(
    conn: &Connection,
    operator_id: &str,
    organization_id: Option<&str>,
    now: OffsetDateTime,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE invites SET revoked_at = ?2
         WHERE operator_id = ?1 AND revoked_at IS NULL AND redeemed_at IS NULL AND expires_at > ?2
           AND (?3 IS NULL OR organization_id = ?3)",
        params![operator_id, Ts(now), organization_id],
    )
}
