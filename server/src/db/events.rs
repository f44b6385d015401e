//! Usage events uploaded by phones, keyed by (phone, client-generated id) so an upload
//! retried after a lost answer stores nothing twice; the admin's list also shows the usage
//! sessions machines reported themselves (`machine_usage`), as `usage_session` events.

use super::{Ts, opt_ts, ts};
use opkey_protocol::api::{EventSource, UsageEvent, UsageEventKind, UsageEventView};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

pub fn kind_str(kind: UsageEventKind) -> &'static str {
    match kind {
        UsageEventKind::UnlockAttempt => "unlock_attempt",
        UsageEventKind::LockAttempt => "lock_attempt",
        UsageEventKind::UsageSession => "usage_session",
    }
}

fn parse_kind(text: &str) -> Option<UsageEventKind> {
    [
        UsageEventKind::UnlockAttempt,
        UsageEventKind::LockAttempt,
        UsageEventKind::UsageSession,
    ]
    .into_iter()
    .find(|k| kind_str(*k) == text)
}

/// Who sent an event and where it shows.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub phone_id: &'a str,
    pub operator_id: &'a str,
    /// The machine's organization, when the operator belongs to it; admins of no other
    /// organization see the event.
    pub organization_id: Option<&'a str>,
}

/// Stores the event unless this phone already sent one with the same id; true when
/// stored.
pub fn insert(
    conn: &Connection,
    sender: Sender<'_>,
    e: &UsageEvent,
    received_at: OffsetDateTime,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO usage_events (phone_id, id, operator_id, organization_id, kind, key_id,
                 machine_id, at, outcome, usage_session, ended_at, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            sender.phone_id,
            e.id,
            sender.operator_id,
            sender.organization_id,
            kind_str(e.kind),
            e.key_id,
            e.machine_id,
            Ts(e.at),
            e.outcome,
            e.usage_session,
            e.ended_at.map(Ts),
            Ts(received_at)
        ])?;
    Ok(changed == 1)
}

/// The organization of a machine, if the operator is a member of it.
pub fn machine_organization_of_member(
    conn: &Connection,
    machine_id: &str,
    operator_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT m.organization_id FROM machines m
         JOIN memberships ms ON ms.organization_id = m.organization_id AND ms.operator_id = ?2
         WHERE m.id = ?1",
    )?
    .query_row([machine_id, operator_id], |r| r.get(0))
    .optional()
}

fn view(row: &Row<'_>) -> rusqlite::Result<UsageEventView> {
    let kind: String = row.get(1)?;
    Ok(UsageEventView {
        event: UsageEvent {
            id: row.get(0)?,
            kind: parse_kind(&kind).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    format!("unknown event kind {kind}").into(),
                )
            })?,
            key_id: row.get(2)?,
            machine_id: row.get(3)?,
            at: ts(row, 4)?,
            outcome: row.get(5)?,
            usage_session: row.get(6)?,
            ended_at: opt_ts(row, 7)?,
        },
        operator_id: row.get(8)?,
        phone_id: row.get(9)?,
        received_at: ts(row, 10)?,
        source: if row.get::<_, String>(11)? == "machine" {
            EventSource::Machine
        } else {
            EventSource::Phone
        },
    })
}

/// The organization's newest `limit` events, phones' and machines', optionally of one
/// machine and/or one operator, returned oldest first. A machine's session shows as a
/// `usage_session` event with id `session-N`, `at` its start, `outcome` its `ended_by`,
/// no phone, and the operator of its personal key (empty for a non-personal key).
pub fn list_in_org(
    conn: &Connection,
    organization_id: &str,
    machine_id: Option<&str>,
    operator_id: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<UsageEventView>> {
    let mut events = conn
        .prepare_cached(
            "SELECT id, kind, key_id, machine_id, at, outcome, usage_session, ended_at, operator_id, phone_id,
                    received_at, 'phone' AS source, rowid AS n
             FROM usage_events
             WHERE organization_id = ?1 AND (?2 IS NULL OR machine_id = ?2) AND (?3 IS NULL OR operator_id = ?3)
             UNION ALL
             SELECT 'session-' || usage_session, 'usage_session', key_id, machine_id, started_at, ended_by,
                    usage_session, ended_at, COALESCE(operator_id, ''), '', received_at, 'machine', usage_session
             FROM machine_usage_sessions
             WHERE organization_id = ?1 AND (?2 IS NULL OR machine_id = ?2) AND (?3 IS NULL OR operator_id = ?3)
             ORDER BY at DESC, n DESC LIMIT ?4",
        )?
        .query_map(params![organization_id, machine_id, operator_id, limit], view)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    events.reverse();
    Ok(events)
}
