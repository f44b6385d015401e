//! Machines of an organization: telematics unit, keypad and the BLE public key the
//! phone checks the machine against, and the provisioning bundle a telematics unit
//! needs to verify grants offline. Every change to a machine takes the next value of the
//! change sequence, so phones holding keys to it learn it (and a newly registered BLE
//! key brings the machine into their grants) by sync.

use super::clean_name;
use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::{machines, revocations, sequence};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::ids::{IdKind, new_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opkey_protocol::api::{CreateMachine, EditMachine, ErrorBody, MachineProvisioning};
use opkey_protocol::auth::check_public_key_shape;
use opkey_protocol::encoding::{b64, unb64};
use opkey_protocol::{Keypad, Machine, TelematicsUnit};

const MAX_SERIAL_CHARS: usize = 100;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("machine {id} is not in this organization"))
}

fn clean_serial(serial: &str) -> Result<String, ApiError> {
    let serial = serial.trim();
    if serial.chars().count() > MAX_SERIAL_CHARS {
        return Err(ApiError::field(
            "serial",
            format!("is longer than {MAX_SERIAL_CHARS} characters"),
        ));
    }
    Ok(serial.to_owned())
}

/// A P-256 public key in canonical base64url.
fn clean_ble_public_key(key: &str) -> Result<String, ApiError> {
    unb64(key.trim())
        .filter(|bytes| check_public_key_shape(bytes).is_ok())
        .map(|bytes| b64(&bytes))
        .ok_or_else(|| {
            ApiError::field(
                "ble_public_key",
                "must be a P-256 public key: 65 bytes SEC1 uncompressed (starting 0x04), base64url without padding",
            )
        })
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
    let serial = clean_serial(&body.serial)?;
    let ble_public_key = body
        .ble_public_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(clean_ble_public_key)
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

/// Renames a machine, changes its serial, or registers (or replaces) its BLE key.
#[utoipa::path(
    patch, path = "/admin/v1/machines/{id}", tag = "machines", security(("admin_token" = [])),
    params(("id" = String, Path, description = "machine id")),
    request_body = EditMachine,
    responses(
        (status = 200, body = Machine), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditMachine>,
) -> ApiResult<Json<Machine>> {
    let name = body.name.as_deref().map(|n| clean_name("name", n)).transpose()?;
    let serial = body.serial.as_deref().map(clean_serial).transpose()?;
    let ble_public_key = body
        .ble_public_key
        .as_deref()
        .map(clean_ble_public_key)
        .transpose()?;
    let (machine, key_changed) = state
        .db
        .write(move |tx| {
            let before =
                machines::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            let mut machine = before.clone();
            if let Some(name) = name {
                machine.name = name;
            }
            if let Some(serial) = serial {
                machine.serial = serial;
            }
            if let Some(key) = ble_public_key {
                machine.ble_public_key = Some(key);
            }
            if machine != before {
                machines::update(tx, &machine, sequence::next(tx)?)?;
            }
            let key_changed = machine.ble_public_key != before.ble_public_key;
            Ok((machine, key_changed))
        })
        .await?;
    tracing::info!(machine_id = %machine.id, ble_key_changed = key_changed, "machine edited");
    Ok(Json(machine))
}

/// What a telematics unit needs to verify grants offline: the issuer's public key, its
/// own registered key, its timings and its latest revocation list; where to report its
/// usage sessions when online; and, for a machine with a keypad, its keypad table
/// (secret: Rolling PIN seeds and Static PINs).
#[utoipa::path(
    get, path = "/admin/v1/machines/{id}/provisioning", tag = "machines", security(("admin_token" = [])),
    params(("id" = String, Path, description = "machine id")),
    responses(
        (status = 200, body = MachineProvisioning), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the machine's BLE public key is not registered yet")
    )
)]
pub async fn provisioning(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<MachineProvisioning>> {
    let (secrets, now) = (state.secrets.clone(), state.now());
    let (machine, list, keypad) = state
        .db
        .read(move |conn| {
            let machine =
                machines::get_in_org(conn, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            let list = revocations::latest(conn, &machine.id)?;
            let keypad = if machine.keypad == Keypad::None || machine.ble_public_key.is_none() {
                None
            } else {
                Some(crate::keypad::table::build(conn, &secrets, &machine, now)?)
            };
            Ok((machine, list, keypad))
        })
        .await?;
    let machine_public_key = machine.ble_public_key.ok_or_else(|| {
        ApiError::Conflict(format!(
            "machine '{}' ({}) has no BLE public key yet: register the machine's key first \
             (PATCH /admin/v1/machines/{} with ble_public_key), then fetch its provisioning",
            machine.name, machine.id, machine.id
        ))
    })?;
    Ok(Json(MachineProvisioning {
        machine_id: machine.id,
        name: machine.name,
        issuer_public_key: state.issuer.public_key().to_owned(),
        machine_public_key,
        challenge_lifetime_s: state.challenge_lifetime_s,
        relock_after_s: state.relock_after_s,
        revocations: list.map(|(_, bytes)| b64(&bytes)),
        server_url: Some(state.public_url.to_string()),
        keypad,
    }))
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
            revocations::delete_machine(tx, &machine.id)?;
            Ok(machines::delete(tx, &machine.id)?)
        })
        .await?;
    tracing::info!(%machine_id, "machine deleted");
    Ok(StatusCode::NO_CONTENT)
}
