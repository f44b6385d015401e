//! Admin users of the admin API. Their tokens are stored only as SHA-256 digests.

use super::Ts;
use opkey_protocol::api::AdminRole;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// An admin user as stored (without any token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub role: AdminRole,
}

pub fn role_str(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Admin => "admin",
        AdminRole::FleetAdmin => "fleet-admin",
        AdminRole::Viewer => "viewer",
    }
}

fn parse_role(text: &str) -> Option<AdminRole> {
    [AdminRole::Admin, AdminRole::FleetAdmin, AdminRole::Viewer]
        .into_iter()
        .find(|r| role_str(*r) == text)
}

pub fn insert(
    conn: &Connection,
    user: &AdminUser,
    token_digest: &str,
    now: OffsetDateTime,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO admin_users (id, organization_id, name, role, token_digest, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id,
            user.organization_id,
            user.name,
            role_str(user.role),
            token_digest,
            Ts(now)
        ],
    )?;
    Ok(())
}

pub fn by_token_digest(conn: &Connection, digest: &str) -> rusqlite::Result<Option<AdminUser>> {
    conn.prepare_cached("SELECT id, organization_id, name, role FROM admin_users WHERE token_digest = ?1")?
        .query_row([digest], |r| {
            let role: String = r.get(3)?;
            let role = parse_role(&role).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    format!("unknown admin role '{role}'").into(),
                )
            })?;
            Ok(AdminUser {
                id: r.get(0)?,
                organization_id: r.get(1)?,
                name: r.get(2)?,
                role,
            })
        })
        .optional()
}
