//! Phone bindings: a phone's enrolled P-256 public key bound to an operator by a
//! redeemed invite. Revoked bindings stay so the phone is told precisely why it is out.

use super::{Ts, opt_ts, ts};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRow {
    pub id: String,
    pub operator_id: String,
    /// SEC1 uncompressed P-256 point, base64url.
    pub public_key: String,
    pub device_name: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl PhoneRow {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

pub fn insert(conn: &Connection, phone: &PhoneRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO phones (id, operator_id, public_key, device_name, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            phone.id,
            phone.operator_id,
            phone.public_key,
            phone.device_name,
            Ts(phone.created_at),
            phone.revoked_at.map(Ts)
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<PhoneRow>> {
    conn.prepare_cached(
        "SELECT id, operator_id, public_key, device_name, created_at, revoked_at FROM phones WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(PhoneRow {
            id: r.get(0)?,
            operator_id: r.get(1)?,
            public_key: r.get(2)?,
            device_name: r.get(3)?,
            created_at: ts(r, 4)?,
            revoked_at: opt_ts(r, 5)?,
        })
    })
    .optional()
}

/// True when a phone is currently bound to the operator.
pub fn operator_is_enrolled(conn: &Connection, operator_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM phones WHERE operator_id = ?1 AND revoked_at IS NULL")?
        .exists([operator_id])
}

/// Revokes every active binding of the operator and forgets their grants (each key's
/// grant horizon keeps how long they stay valid); returns how many there were.
pub fn revoke_all_of_operator(
    conn: &Connection,
    operator_id: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM grants WHERE phone_id IN
             (SELECT id FROM phones WHERE operator_id = ?1 AND revoked_at IS NULL)",
        [operator_id],
    )?;
    conn.execute(
        "UPDATE phones SET revoked_at = ?2 WHERE operator_id = ?1 AND revoked_at IS NULL",
        params![operator_id, Ts(now)],
    )
}
