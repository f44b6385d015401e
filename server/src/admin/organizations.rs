//! Organizations: the customers whose operators, machines and keys are kept apart.

use super::clean_name;
use crate::app::AppState;
use crate::auth::{AccessManager, Administrator};
use crate::db::organizations;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::ids::{IdKind, new_id};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use opkey_protocol::Organization;
use opkey_protocol::api::{CreateOrganization, ErrorBody};

/// Creates an organization (role admin).
#[utoipa::path(
    post, path = "/admin/v1/organizations", tag = "admin", security(("admin_token" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, body = Organization),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> ApiResult<(StatusCode, Json<Organization>)> {
    let org = Organization {
        id: new_id(&state.rng, IdKind::Organization)?,
        name: clean_name("name", &body.name)?,
    };
    let now = state.now();
    let stored = org.clone();
    state
        .db
        .write(move |tx| Ok(organizations::insert(tx, &stored, false, now)?))
        .await?;
    tracing::info!(organization_id = %org.id, by = %caller.name, "organization created");
    Ok((StatusCode::CREATED, Json(org)))
}

/// Lists organizations: all for the bootstrap admin, the caller's own otherwise.
#[utoipa::path(
    get, path = "/admin/v1/organizations", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<Organization>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
) -> ApiResult<Json<Vec<Organization>>> {
    if caller.bootstrap {
        Ok(Json(state.db.read(|conn| Ok(organizations::list(conn)?)).await?))
    } else {
        Ok(Json(vec![caller.organization]))
    }
}
