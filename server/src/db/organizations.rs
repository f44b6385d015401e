//! Organizations and the default organization created on first start.

use super::Ts;
use opkey_protocol::Organization;
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

fn organization(row: &Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: row.get(0)?,
        name: row.get(1)?,
    })
}

pub fn insert(
    conn: &Connection,
    org: &Organization,
    is_default: bool,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO organizations (id, name, is_default, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![org.id, org.name, is_default, Ts(now)],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Organization>> {
    conn.prepare_cached("SELECT id, name FROM organizations WHERE id = ?1")?
        .query_row([id], organization)
        .optional()
}

pub fn default_organization(conn: &Connection) -> rusqlite::Result<Option<Organization>> {
    conn.query_row(
        "SELECT id, name FROM organizations WHERE is_default = 1 ORDER BY created_at LIMIT 1",
        [],
        organization,
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Organization>> {
    conn.prepare("SELECT id, name FROM organizations ORDER BY created_at, rowid")?
        .query_map([], organization)?
        .collect()
}

/// The organizations an operator belongs to, oldest membership first.
pub fn of_operator(conn: &Connection, operator_id: &str) -> rusqlite::Result<Vec<Organization>> {
    conn.prepare_cached(
        "SELECT o.id, o.name FROM memberships m JOIN organizations o ON o.id = m.organization_id
         WHERE m.operator_id = ?1 ORDER BY m.created_at, o.rowid",
    )?
    .query_map([operator_id], organization)?
    .collect()
}
