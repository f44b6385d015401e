//! Who is calling. Admin requests carry an admin token (the bootstrap token from the
//! configuration, or a user's token stored as a SHA-256 digest) and act in exactly one
//! organization; phone requests carry a short-lived session access token.
//!
//! The extractors here are the only place that reads credentials. They never log a
//! token; a refusal names what is missing, not what was sent.

use crate::app::AppState;
use crate::db::{organizations, phones, sessions, users};
use crate::error::ApiError;
use crate::extract::bearer_token;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use opkey_protocol::Organization;
use opkey_protocol::api::{AdminRole, ORGANIZATION_HEADER};
use opkey_protocol::encoding::sha256_hex;

/// The name the bootstrap admin goes by.
pub const BOOTSTRAP_ADMIN_NAME: &str = "bootstrap admin";

/// An authenticated admin and the organization the request acts in.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub name: String,
    pub role: AdminRole,
    pub organization: Organization,
    /// True for the bootstrap token, which may act in any organization.
    pub bootstrap: bool,
}

impl AdminCaller {
    pub fn organization_id(&self) -> &str {
        &self.organization.id
    }

    /// Whether this caller may see that an operator belongs to `organization_id`.
    pub fn sees_organization(&self, organization_id: &str) -> bool {
        self.bootstrap || self.organization.id == organization_id
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::Unauthorized("send an admin token as 'Authorization: Bearer <token>'".to_owned())
        })?;
        let digest = sha256_hex(token.as_bytes());
        let wanted_org = parts
            .headers
            .get(ORGANIZATION_HEADER)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| ApiError::field(ORGANIZATION_HEADER, "must be an organization id"))
            })
            .transpose()?
            .filter(|s| !s.is_empty());

        if digest == state.bootstrap_digest {
            let organization = match wanted_org {
                None => state.default_organization.clone(),
                Some(id) => {
                    state
                        .db
                        .read(move |conn| {
                            organizations::get(conn, &id)?.ok_or_else(|| {
                            ApiError::NotFound(format!(
                                "organization {id} (from the {ORGANIZATION_HEADER} header) does not exist; \
                                 list them with GET /admin/v1/organizations"
                            ))
                        })
                        })
                        .await?
                }
            };
            return Ok(AdminCaller {
                name: BOOTSTRAP_ADMIN_NAME.to_owned(),
                role: AdminRole::Admin,
                organization,
                bootstrap: true,
            });
        }

        let (user, organization) = state
            .db
            .read(move |conn| {
                let user = users::by_token_digest(conn, &digest)?
                    .ok_or_else(|| ApiError::Unauthorized("unknown admin token".to_owned()))?;
                let organization = organizations::get(conn, &user.organization_id)?
                    .ok_or_else(|| ApiError::Internal(format!("user {} has no organization", user.id)))?;
                Ok((user, organization))
            })
            .await?;
        if let Some(id) = wanted_org
            && id != organization.id
        {
            return Err(ApiError::Forbidden(format!(
                "this token acts only in organization {}; leave out the {ORGANIZATION_HEADER} header",
                organization.id
            )));
        }
        Ok(AdminCaller {
            name: user.name,
            role: user.role,
            organization,
            bootstrap: false,
        })
    }
}

/// An admin allowed to manage access: role `admin` or `fleet-admin`.
#[derive(Debug, Clone)]
pub struct AccessManager(pub AdminCaller);

impl FromRequestParts<AppState> for AccessManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = AdminCaller::from_request_parts(parts, state).await?;
        if caller.role.may_manage_access() {
            Ok(AccessManager(caller))
        } else {
            Err(ApiError::Forbidden(
                "managing access needs the admin or fleet-admin role; ask an admin of your organization"
                    .to_owned(),
            ))
        }
    }
}

/// An admin with role `admin`: may create organizations and admin users.
#[derive(Debug, Clone)]
pub struct Administrator(pub AdminCaller);

impl FromRequestParts<AppState> for Administrator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = AdminCaller::from_request_parts(parts, state).await?;
        if caller.role == AdminRole::Admin {
            Ok(Administrator(caller))
        } else {
            Err(ApiError::Forbidden(
                "this needs the admin role; ask an admin of your organization".to_owned(),
            ))
        }
    }
}

/// A phone with an open session: its binding is active.
#[derive(Debug, Clone)]
pub struct PhoneSession {
    pub phone_id: String,
    pub operator_id: String,
}

impl FromRequestParts<AppState> for PhoneSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let digest = bearer_token(parts)
            .map(|token| sha256_hex(token.as_bytes()))
            .ok_or(ApiError::SessionExpired)?;
        let now = state.now();
        state
            .db
            .read(move |conn| {
                let (phone_id, expires_at) =
                    sessions::session(conn, &digest)?.ok_or(ApiError::SessionExpired)?;
                if now >= expires_at {
                    return Err(ApiError::SessionExpired);
                }
                let phone = phones::get(conn, &phone_id)?.ok_or(ApiError::SessionExpired)?;
                if !phone.is_active() {
                    return Err(ApiError::PhoneRevoked);
                }
                Ok(PhoneSession {
                    phone_id,
                    operator_id: phone.operator_id,
                })
            })
            .await
    }
}
