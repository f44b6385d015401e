//! Machines of an organization: telematics unit, keypad and the BLE public key the
//! phone checks the machine against.

use super::clean_name;
use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::{machines, sequence};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::ids::{IdKind, new_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opkey_protocol::api::{CreateMachine, ErrorBody};
use opkey_protocol::auth::check_public_key_shape;
use opkey_protocol::encoding::{b64, unb64};
use opkey_protocol::{Keypad, Machine, TelematicsUnit};

const MAX_SERIAL_CHARS: usize = 100;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("machine {id} is not in this organization"))
}

/// Registers a machine (TU600 and no keypad unless given).
#[utoipa::path(
    post, path = "/admin/v1/machines", tag = "machines", security(("admin_token" = [])),
    request_body = CreateMachine,
    responses((status = 201, body = Machine), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn create(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiJson(body): ApiJson<CreateMachine>,
) -> ApiResult<(StatusCode, Json<Machine>)> {
    let serial = body.serial.trim().to_owned();
    if serial.chars().count() > MAX_SERIAL_CHARS {
        return Err(ApiError::field(
            "serial",
            format!("is longer than {MAX_SERIAL_CHARS} characters"),
        ));
    }
    let ble_public_key = body
        .ble_public_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            unb64(k)
                .filter(|bytes| check_public_key_shape(bytes).is_ok())
                .map(|bytes| b64(&bytes))
                .ok_or_else(|| {
                    ApiError::field(
                        "ble_public_key",
                        "must be a P-256 public key: 65 bytes SEC1 uncompressed (starting 0x04), base64url without padding",
                    )
                })
        })
        .transpose()?;
    let machine = Machine {
        id: new_id(&state.rng, IdKind::Machine)?,
        organization_id: caller.organization.id.clone(),
        name: clean_name("name", &body.name)?,
        serial,
        unit_type: body.unit_type.unwrap_or(TelematicsUnit::Tu600),
        keypad: body.keypad.unwrap_or(Keypad::None),
        ble_public_key,
    };
    let now = state.now();
    let stored = machine.clone();
    state
        .db
        .write(move |tx| Ok(machines::insert(tx, &stored, sequence::next(tx)?, now)?))
        .await?;
    tracing::info!(machine_id = %machine.id, organization_id = %machine.organization_id, "machine registered");
    Ok((StatusCode::CREATED, Json(machine)))
}

#[utoipa::path(
    get, path = "/admin/v1/machines", tag = "machines", security(("admin_token" = [])),
    responses((status = 200, body = Vec<Machine>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
) -> ApiResult<Json<Vec<Machine>>> {
    let list = state
        .db
        .read(move |conn| Ok(machines::list_in_org(conn, caller.organization_id())?))
        .await?;
    Ok(Json(list))
}

#[utoipa::path(
    get, path = "/admin/v1/machines/{id}", tag = "machines", security(("admin_token" = [])),
    params(("id" = String, Path, description = "machine id")),
    responses((status = 200, body = Machine), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<Machine>> {
    let machine = state
        .db
        .read(move |conn| {
            machines::get_in_org(conn, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))
        })
        .await?;
    Ok(Json(machine))
}

/// Deletes a machine that no key refers to any more.
#[utoipa::path(
    delete, path = "/admin/v1/machines/{id}", tag = "machines", security(("admin_token" = [])),
    params(("id" = String, Path, description = "machine id")),
    responses(
        (status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "keys still refer to the machine")
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let machine_id = id.clone();
    state
        .db
        .write(move |tx| {
            let machine =
                machines::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            if machines::has_keys(tx, &machine.id)? {
                return Err(ApiError::Conflict(format!(
                    "keys still open machine '{}' ({}); delete them first (GET /admin/v1/keys?machine_id={})",
                    machine.name, machine.id, machine.id
                )));
            }
            Ok(machines::delete(tx, &machine.id)?)
        })
        .await?;
    tracing::info!(%machine_id, "machine deleted");
    Ok(StatusCode::NO_CONTENT)
}
