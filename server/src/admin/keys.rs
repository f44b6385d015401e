//! Keys: access to machines of this organization by one access type between From and
//! To. Enforces the rules of the fleet backend: a Digital Key is personal, card keys
//! carry a card id unique on the device, and a device stores at most
//! [`SlotClass::DEVICE_LIMIT`] static PINs, key cards and IPAF cards each.
//!
//! A key counts against its device lists while it is live: not deleted, not revoked
//! and not yet expired. Every change bumps the key's sequence value (and edits and
//! revocations its version) so phones see it by cursor. Deleting, revoking or editing a
//! Digital Key whose grants may still be valid issues new revocation lists for its
//! machines in the same transaction (`digital_key::revocations`); so does changing a key
//! on keypads (Rolling PIN, Static PIN, cards), whose keypad tables may still hold it.
//!
//! A Rolling PIN key gets a seed (sealed at rest) and the lowest keypad slot free on all
//! of its machines; a Static PIN key gets the admin's PIN or a generated one, unique on
//! each of its machines (`keypad`). Neither secret is ever logged or put in an error.

use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::keys::SealedPins;
use crate::db::{keys, machines, operators, sequence};
use crate::digital_key::revocations::{self, REVOKED_ENTIRELY, Refusal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::ids::{IdKind, new_id};
use crate::keypad;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opkey_protocol::api::{CreateKey, EditKey, ErrorBody, StaticPinView};
use opkey_protocol::model::{RollingPinInfo, SlotClass, Validity};
use opkey_protocol::pin::{PinSeed, PinSpec, PinSpecError};
use opkey_protocol::{AccessType, Key, Machine};
use rusqlite::Connection;
use serde::Deserialize;
use std::collections::HashSet;
use time::OffsetDateTime;
use zeroize::Zeroizing;

const MAX_CARD_ID_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 1000;
const MAX_MACHINES_PER_KEY: usize = 1000;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("key {id} is not in this organization"))
}

fn clean_description(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::field(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

fn clean_card_id(access_type: AccessType, card_id: Option<&str>) -> Result<Option<String>, ApiError> {
    let card_id = card_id.map(str::trim).filter(|c| !c.is_empty());
    match (access_type.is_card(), card_id) {
        (true, None) => Err(ApiError::field(
            "card_id",
            format!(
                "is required for {} keys: give the number printed on the card",
                access_type.label()
            ),
        )),
        (true, Some(c)) if c.chars().count() > MAX_CARD_ID_CHARS => Err(ApiError::field(
            "card_id",
            format!("is longer than {MAX_CARD_ID_CHARS} characters"),
        )),
        (true, Some(c)) => Ok(Some(c.to_owned())),
        (false, Some(_)) => Err(ApiError::field(
            "card_id",
            format!(
                "only card keys carry a card id; leave it out for {} keys",
                access_type.label()
            ),
        )),
        (false, None) => Ok(None),
    }
}

/// The Rolling PIN settings of a new key (defaults filled in), refusing PIN fields on a
/// key of another access type.
fn clean_pin_fields(body: &CreateKey) -> Result<Option<PinSpec>, ApiError> {
    if body.access_type != AccessType::StaticPin && body.static_pin.is_some() {
        return Err(ApiError::field(
            "static_pin",
            format!(
                "only Static PIN keys have a PIN; leave it out for {} keys",
                body.access_type.label()
            ),
        ));
    }
    if body.access_type != AccessType::RollingPin {
        let given = [
            ("pin_algorithm", body.pin_algorithm.is_some()),
            ("pin_digits", body.pin_digits.is_some()),
            ("pin_period_s", body.pin_period_s.is_some()),
        ];
        if let Some((field, _)) = given.into_iter().find(|(_, set)| *set) {
            return Err(ApiError::field(
                field,
                format!(
                    "only Rolling PIN keys have PIN settings; leave it out for {} keys",
                    body.access_type.label()
                ),
            ));
        }
        return Ok(None);
    }
    let defaults = PinSpec::default();
    let spec = PinSpec {
        algorithm: body.pin_algorithm.unwrap_or(defaults.algorithm),
        digits: body.pin_digits.unwrap_or(defaults.digits),
        period_s: body.pin_period_s.unwrap_or(defaults.period_s),
    };
    spec.validate().map_err(|e| {
        let field = match e {
            PinSpecError::Digits(_) => "pin_digits",
            PinSpecError::Period(_) => "pin_period_s",
            _ => "pin_algorithm",
        };
        ApiError::field(field, e.to_string())
    })?;
    Ok(Some(spec))
}

/// An admin's Static PIN: 4 to 8 digits.
fn clean_static_pin(pin: Option<&str>) -> Result<Option<Zeroizing<String>>, ApiError> {
    let Some(pin) = pin.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    opkey_protocol::pin::validate_static_pin(pin).map_err(|_| {
        ApiError::field(
            "static_pin",
            format!(
                "must be {} to {} digits (or left out to have one generated)",
                opkey_protocol::pin::STATIC_PIN_MIN_DIGITS,
                opkey_protocol::pin::STATIC_PIN_MAX_DIGITS
            ),
        )
    })?;
    Ok(Some(Zeroizing::new(pin.to_owned())))
}

fn check_window(validity: &Validity) -> Result<(), ApiError> {
    if validity.valid_to <= validity.valid_from {
        return Err(ApiError::field("valid_to", "must be after valid_from"));
    }
    Ok(())
}

/// Refuses a live key that would overfill a device list or put the same card twice on
/// one device. `except` leaves the key itself out when it is being edited.
fn check_device_lists(
    conn: &Connection,
    key: &Key,
    machines: &[Machine],
    now: OffsetDateTime,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let Some(class) = key.access_type.device_slot_class() else {
        return Ok(());
    };
    if key.revoked || key.validity.valid_to <= now {
        return Ok(());
    }
    for machine in machines {
        if let Some(card_id) = &key.card_id
            && let Some(holder) = keys::card_holder(conn, &machine.id, class, card_id, now, except)?
        {
            return Err(ApiError::Conflict(format!(
                "card {card_id} is already on machine '{}' ({}) through key {holder}; delete or end that key first",
                machine.name, machine.id
            )));
        }
        if keys::count_in_slot_class(conn, &machine.id, class, now, except)? >= SlotClass::DEVICE_LIMIT {
            return Err(ApiError::DeviceLimitReached {
                machine_id: machine.id.clone(),
                machine_name: machine.name.clone(),
                class,
            });
        }
    }
    Ok(())
}

fn machines_of(conn: &Connection, key: &Key) -> Result<Vec<Machine>, ApiError> {
    key.machine_ids
        .iter()
        .map(|id| {
            machines::get_in_org(conn, id, &key.organization_id)?
                .ok_or_else(|| ApiError::Internal(format!("key {} refers to missing machine {id}", key.id)))
        })
        .collect()
}

/// Creates a key.
#[utoipa::path(
    post, path = "/admin/v1/keys", tag = "keys", security(("admin_token" = [])),
    request_body = CreateKey,
    responses(
        (status = 201, body = Key), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "device_limit_reached, or the card is already on a machine")
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Key>)> {
    if body.machine_ids.is_empty() {
        return Err(ApiError::field("machine_ids", "name at least one machine"));
    }
    if body.machine_ids.len() > MAX_MACHINES_PER_KEY {
        return Err(ApiError::field(
            "machine_ids",
            format!("a key opens at most {MAX_MACHINES_PER_KEY} machines"),
        ));
    }
    let mut seen = HashSet::new();
    let machine_ids: Vec<String> = body.machine_ids.iter().map(|m| m.trim().to_owned()).collect();
    if let Some(dup) = machine_ids.iter().find(|m| !seen.insert(m.as_str())) {
        return Err(ApiError::field("machine_ids", format!("{dup} is listed twice")));
    }
    let operator_id = body
        .operator_id
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned);
    if body.access_type == AccessType::DigitalKey && operator_id.is_none() {
        return Err(ApiError::field(
            "operator_id",
            "a Digital Key is always personal: set operator_id to the operator whose phone opens the machines",
        ));
    }
    let validity = Validity {
        valid_from: body.valid_from,
        valid_to: body.valid_to,
    };
    check_window(&validity)?;
    let spec = clean_pin_fields(&body)?;
    let given_pin = clean_static_pin(body.static_pin.as_deref())?;
    let mut key = Key {
        id: new_id(&state.rng, IdKind::Key)?,
        organization_id: caller.organization.id.clone(),
        access_type: body.access_type,
        operator_id,
        machine_ids,
        validity,
        description: clean_description(&body.description)?,
        version: 1,
        revoked: false,
        card_id: clean_card_id(body.access_type, body.card_id.as_deref())?,
        rolling_pin: None,
    };
    let mut pins = SealedPins::default();
    if let Some(spec) = spec {
        let seed = PinSeed::generate(spec.algorithm, &state.rng)?;
        pins.seed = Some(state.secrets.seal(&state.rng, &key.id, seed.as_bytes())?);
    }
    let now = state.now();
    let (rng, secrets) = (state.rng.clone(), state.secrets.clone());
    let key = state
        .db
        .write(move |tx| {
            let org_id = &key.organization_id;
            if let Some(op) = &key.operator_id
                && operators::get_in_org(tx, op, org_id)?.is_none()
            {
                return Err(ApiError::field(
                    "operator_id",
                    format!("operator {op} is not in this organization"),
                ));
            }
            let machines = key
                .machine_ids
                .iter()
                .map(|id| {
                    machines::get_in_org(tx, id, org_id)?.ok_or_else(|| {
                        ApiError::field("machine_ids", format!("machine {id} is not in this organization"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            check_device_lists(tx, &key, &machines, now, None)?;
            if let Some(spec) = spec {
                key.rolling_pin = Some(RollingPinInfo {
                    slot: keypad::allocate_slot(tx, &machines, now)?,
                    algorithm: spec.algorithm,
                    digits: spec.digits,
                    period_s: spec.period_s,
                });
            }
            if key.access_type == AccessType::StaticPin {
                let pin = match given_pin {
                    Some(pin) => {
                        let tag = secrets.static_pin_tag(&pin);
                        keypad::check_static_pin_unique(tx, &tag, &machines, now, None)?;
                        pin
                    }
                    None => {
                        keypad::generate_static_pin(tx, &rng, |p| secrets.static_pin_tag(p), &machines, now)?
                    }
                };
                pins.static_pin_tag = Some(secrets.static_pin_tag(&pin));
                pins.static_pin = Some(secrets.seal(&rng, &key.id, pin.as_bytes())?);
            }
            keys::insert(tx, &key, &pins, sequence::next(tx)?, now)?;
            Ok(key)
        })
        .await?;
    tracing::info!(key_id = %key.id, access_type = %key.access_type, operator_id = ?key.operator_id, "key created");
    Ok((StatusCode::CREATED, Json(key)))
}

/// Filters for `GET /admin/v1/keys`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyFilter {
    /// Only this operator's keys.
    pub operator_id: Option<String>,
    /// Only keys that open this machine.
    pub machine_id: Option<String>,
}

#[utoipa::path(
    get, path = "/admin/v1/keys", tag = "keys", security(("admin_token" = [])),
    params(KeyFilter),
    responses((status = 200, body = Vec<Key>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiQuery(filter): ApiQuery<KeyFilter>,
) -> ApiResult<Json<Vec<Key>>> {
    let list = state
        .db
        .read(move |conn| {
            Ok(keys::list_in_org(
                conn,
                caller.organization_id(),
                filter.operator_id.as_deref(),
                filter.machine_id.as_deref(),
            )?)
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(
    get, path = "/admin/v1/keys/{id}", tag = "keys", security(("admin_token" = [])),
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = Key), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<Key>> {
    let key = state
        .db
        .read(move |conn| {
            keys::get_in_org(conn, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))
        })
        .await?;
    Ok(Json(key))
}

/// Changes the end date and/or the description.
#[utoipa::path(
    patch, path = "/admin/v1/keys/{id}", tag = "keys", security(("admin_token" = [])),
    params(("id" = String, Path, description = "key id")),
    request_body = EditKey,
    responses(
        (status = 200, body = Key), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditKey>,
) -> ApiResult<Json<Key>> {
    let description = body.description.as_deref().map(clean_description).transpose()?;
    let now = state.now();
    let issuer = state.issuer.clone();
    let key = state
        .db
        .write(move |tx| {
            let mut key =
                keys::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            if let Some(valid_to) = body.valid_to {
                key.validity.valid_to = valid_to;
                check_window(&key.validity)?;
                let machines = machines_of(tx, &key)?;
                check_device_lists(tx, &key, &machines, now, Some(&key.id))?;
                if !key.revoked && key.validity.valid_to > now {
                    if let Some(pin) = &key.rolling_pin {
                        keypad::check_slot_kept(tx, &key.id, pin.slot, &machines, now)?;
                    }
                    if let Some(tag) = keys::sealed_pins(tx, &key.id)?.static_pin_tag {
                        keypad::check_static_pin_unique(tx, &tag, &machines, now, Some(&key.id))?;
                    }
                }
            }
            if let Some(description) = description {
                key.description = description;
            }
            key.version += 1;
            keys::update(tx, &key, sequence::next(tx)?)?;
            // Grants of older versions carry the old end date: machines must refuse them.
            revocations::refuse(
                tx,
                &issuer,
                &[Refusal {
                    key_id: &key.id,
                    machine_ids: &key.machine_ids,
                    min_serial: revocations::min_serial_for_version(key.version),
                }],
                now,
            )?;
            Ok(key)
        })
        .await?;
    tracing::info!(key_id = %key.id, version = key.version, "key edited");
    Ok(Json(key))
}

/// Deletes a key; phones learn of it by sync.
#[utoipa::path(
    delete, path = "/admin/v1/keys/{id}", tag = "keys", security(("admin_token" = [])),
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn delete(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let key_id = id.clone();
    let issuer = state.issuer.clone();
    state
        .db
        .write(move |tx| {
            let key = keys::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            revocations::refuse(
                tx,
                &issuer,
                &[Refusal {
                    key_id: &key.id,
                    machine_ids: &key.machine_ids,
                    min_serial: REVOKED_ENTIRELY,
                }],
                now,
            )?;
            Ok(keys::tombstone(tx, &key.id, sequence::next(tx)?, now)?)
        })
        .await?;
    tracing::info!(%key_id, "key deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Withdraws a key for good; revoking a revoked key changes nothing.
#[utoipa::path(
    post, path = "/admin/v1/keys/{id}/revoke", tag = "keys", security(("admin_token" = [])),
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = Key), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<Key>> {
    let now = state.now();
    let issuer = state.issuer.clone();
    let key = state
        .db
        .write(move |tx| {
            let mut key =
                keys::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            if !key.revoked {
                key.revoked = true;
                key.version += 1;
                keys::update(tx, &key, sequence::next(tx)?)?;
                revocations::refuse(
                    tx,
                    &issuer,
                    &[Refusal {
                        key_id: &key.id,
                        machine_ids: &key.machine_ids,
                        min_serial: REVOKED_ENTIRELY,
                    }],
                    now,
                )?;
            }
            Ok(key)
        })
        .await?;
    tracing::info!(key_id = %key.id, version = key.version, "key revoked");
    Ok(Json(key))
}

/// A Static PIN key's PIN, for the admin who hands it out.
#[utoipa::path(
    get, path = "/admin/v1/keys/{id}/static-pin", tag = "keys", security(("admin_token" = [])),
    params(("id" = String, Path, description = "key id")),
    responses(
        (status = 200, body = StaticPinView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "conflict: the key is not a Static PIN key")
    )
)]
pub async fn static_pin(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<StaticPinView>> {
    let secrets = state.secrets.clone();
    let view = state
        .db
        .read(move |conn| {
            let key = keys::get_in_org(conn, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            if key.access_type != AccessType::StaticPin {
                return Err(ApiError::NotStaticPin {
                    key_id: key.id,
                    access_type: key.access_type,
                });
            }
            let sealed = keys::sealed_pins(conn, &key.id)?.static_pin.ok_or_else(|| {
                ApiError::Conflict(format!(
                    "key {} was created before Static PINs were kept: delete it and create a new one",
                    key.id
                ))
            })?;
            let pin = secrets.open(&key.id, &sealed)?;
            Ok(StaticPinView {
                key_id: key.id,
                static_pin: String::from_utf8_lossy(&pin).into_owned(),
            })
        })
        .await?;
    tracing::info!(key_id = %view.key_id, "static PIN shown to an admin");
    Ok(Json(view))
}
