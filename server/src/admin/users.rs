//! Admin users and `whoami`. A user's token is generated here, shown once in the
//! response, and stored only as its SHA-256 digest.

use super::clean_name;
use crate::app::AppState;
use crate::auth::{AdminCaller, Administrator};
use crate::db::{organizations, users};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::ids::{IdKind, new_id, new_secret};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use opkey_protocol::api::{AdminIdentity, AdminUserCreated, CreateAdminUser, ErrorBody};
use opkey_protocol::encoding::sha256_hex;

/// Who the token belongs to and where it acts. Allowed for every role.
#[utoipa::path(
    get, path = "/admin/v1/whoami", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = AdminIdentity), (status = 401, body = ErrorBody))
)]
pub async fn whoami(caller: AdminCaller) -> Json<AdminIdentity> {
    Json(AdminIdentity {
        name: caller.name,
        role: caller.role,
        organization_id: caller.organization.id,
    })
}

/// Creates an admin user (role admin). Only the bootstrap admin may create users in an
/// organization other than the one it acts in.
#[utoipa::path(
    post, path = "/admin/v1/users", tag = "admin", security(("admin_token" = [])),
    request_body = CreateAdminUser,
    responses(
        (status = 201, body = AdminUserCreated),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    ApiJson(body): ApiJson<CreateAdminUser>,
) -> ApiResult<(StatusCode, Json<AdminUserCreated>)> {
    let name = clean_name("name", &body.name)?;
    let organization_id = body
        .organization_id
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| caller.organization.id.clone());
    if !caller.bootstrap && organization_id != caller.organization.id {
        return Err(ApiError::Forbidden(format!(
            "you may only create users in your own organization {}",
            caller.organization.id
        )));
    }
    let user = users::AdminUser {
        id: new_id(&state.rng, IdKind::User)?,
        organization_id,
        name,
        role: body.role,
    };
    let token = new_secret(&state.rng)?;
    let digest = sha256_hex(token.as_bytes());
    let now = state.now();
    let stored = user.clone();
    state
        .db
        .write(move |tx| {
            if organizations::get(tx, &stored.organization_id)?.is_none() {
                return Err(ApiError::NotFound(format!(
                    "organization {} does not exist",
                    stored.organization_id
                )));
            }
            users::insert(tx, &stored, &digest, now)?;
            Ok(())
        })
        .await?;
    tracing::info!(user_id = %user.id, organization_id = %user.organization_id, role = users::role_str(user.role), "admin user created");
    Ok((
        StatusCode::CREATED,
        Json(AdminUserCreated {
            id: user.id,
            name: user.name,
            role: user.role,
            organization_id: user.organization_id,
            token,
        }),
    ))
}
