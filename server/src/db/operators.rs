//! Operators (people, identified by phone) and their memberships in organizations.

use super::{Ts, opt_parsed, parsed, ts};
use opkey_protocol::{AccessType, PhoneNumber};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::collections::HashSet;
use time::OffsetDateTime;

/// An operator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    pub phone: PhoneNumber,
    pub access_type: Option<AccessType>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "o.id, o.name, o.phone, o.access_type, o.created_at";

fn operator(row: &Row<'_>) -> rusqlite::Result<OperatorRow> {
    Ok(OperatorRow {
        id: row.get(0)?,
        name: row.get(1)?,
        phone: parsed(row, 2)?,
        access_type: opt_parsed(row, 3)?,
        created_at: ts(row, 4)?,
    })
}

pub fn insert(conn: &Connection, op: &OperatorRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO operators (id, name, phone, access_type, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        op.id,
        op.name,
        op.phone.as_str(),
        op.access_type.map(AccessType::as_str),
        Ts(op.created_at)
    ])?;
    Ok(())
}

pub fn update(conn: &Connection, op: &OperatorRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE operators SET name = ?2, phone = ?3, access_type = ?4 WHERE id = ?1",
        params![
            op.id,
            op.name,
            op.phone.as_str(),
            op.access_type.map(AccessType::as_str)
        ],
    )?;
    Ok(())
}

pub fn mark_deleted(conn: &Connection, id: &str, now: OffsetDateTime) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE operators SET deleted_at = ?2 WHERE id = ?1",
        params![id, Ts(now)],
    )?;
    Ok(())
}

/// The live (not deleted) operator with this phone number, in any organization.
pub fn live_by_phone(conn: &Connection, phone: &PhoneNumber) -> rusqlite::Result<Option<OperatorRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.phone = ?1 AND o.deleted_at IS NULL"
    ))?
    .query_row([phone.as_str()], operator)
    .optional()
}

/// A live operator by id, whatever their organizations.
pub fn get_live(conn: &Connection, id: &str) -> rusqlite::Result<Option<OperatorRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.id = ?1 AND o.deleted_at IS NULL"
    ))?
    .query_row([id], operator)
    .optional()
}

/// A live operator who is a member of `organization_id`.
pub fn get_in_org(
    conn: &Connection,
    id: &str,
    organization_id: &str,
) -> rusqlite::Result<Option<OperatorRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM operators o
         JOIN memberships m ON m.operator_id = o.id AND m.organization_id = ?2
         WHERE o.id = ?1 AND o.deleted_at IS NULL"
    ))?
    .query_row([id, organization_id], operator)
    .optional()
}

pub fn list_in_org(conn: &Connection, organization_id: &str) -> rusqlite::Result<Vec<OperatorRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM operators o
         JOIN memberships m ON m.operator_id = o.id AND m.organization_id = ?1
         WHERE o.deleted_at IS NULL ORDER BY o.created_at, o.rowid"
    ))?
    .query_map([organization_id], operator)?
    .collect()
}

/// Phone numbers (E.164 text) of the live operators of an organization.
pub fn phones_in_org(conn: &Connection, organization_id: &str) -> rusqlite::Result<HashSet<String>> {
    conn.prepare_cached(
        "SELECT o.phone FROM operators o
         JOIN memberships m ON m.operator_id = o.id AND m.organization_id = ?1
         WHERE o.deleted_at IS NULL",
    )?
    .query_map([organization_id], |r| r.get(0))?
    .collect()
}

pub fn add_membership(
    conn: &Connection,
    operator_id: &str,
    organization_id: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO memberships (operator_id, organization_id, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![operator_id, organization_id, Ts(now)])?;
    Ok(())
}

pub fn remove_membership(
    conn: &Connection,
    operator_id: &str,
    organization_id: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM memberships WHERE operator_id = ?1 AND organization_id = ?2",
        [operator_id, organization_id],
    )?;
    Ok(())
}

pub fn is_member(conn: &Connection, operator_id: &str, organization_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM memberships WHERE operator_id = ?1 AND organization_id = ?2")?
        .exists([operator_id, organization_id])
}

/// Ids of the organizations an operator belongs to, oldest membership first.
pub fn organization_ids(conn: &Connection, operator_id: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT m.organization_id FROM memberships m JOIN organizations o ON o.id = m.organization_id
         WHERE m.operator_id = ?1 ORDER BY m.created_at, o.rowid",
    )?
    .query_map([operator_id], |r| r.get(0))?
    .collect()
}
