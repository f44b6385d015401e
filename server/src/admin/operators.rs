//! Operators: people identified by phone, members of one or more organizations.
//!
//! Creating an operator whose phone already belongs to an operator of another
//! organization adds a membership to that same person (same id, their name and phone
//! kept). Deleting removes the membership and tombstones the operator's keys in this
//! organization; with no membership left the operator is deleted and their invites and
//! phones are revoked. Machines learn of it by revocation lists: deleted keys are refused
//! entirely, and a re-invite (lost or replaced phone) supersedes the operator's Digital
//! Keys so the old phone's grants are refused.

use super::clean_name;
use super::invites::{self as invite_flow, IssuedInvite};
use crate::app::AppState;
use crate::auth::{AccessManager, AdminCaller};
use crate::db::operators::{self, OperatorRow};
use crate::db::{invites, keys, phones, sequence};
use crate::digital_key::revocations::{self, REVOKED_ENTIRELY, Refusal};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::ids::{IdKind, new_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opkey_protocol::api::{CreateOperator, EditOperator, ErrorBody, InviteSummary, OperatorView};
use opkey_protocol::{AccessType, Operator, PhoneNumber};
use ring::rand::SecureRandom;
use rusqlite::Connection;
use time::OffsetDateTime;

/// The operator as this caller sees them: memberships limited to organizations the
/// caller may see, enrollment, and their latest invite.
pub fn view(
    conn: &Connection,
    op: OperatorRow,
    caller: &AdminCaller,
    now: OffsetDateTime,
) -> rusqlite::Result<OperatorView> {
    let organization_ids = operators::organization_ids(conn, &op.id)?
        .into_iter()
        .filter(|id| caller.sees_organization(id))
        .collect();
    let enrolled = phones::operator_is_enrolled(conn, &op.id)?;
    let invite = invites::latest_of_operator(conn, &op.id)?.map(|i| i.summary_at(now));
    Ok(OperatorView {
        operator: Operator {
            id: op.id,
            name: op.name,
            phone: op.phone,
            access_type: op.access_type,
            organization_ids,
            enrolled,
            created_at: op.created_at,
        },
        invite,
    })
}

/// Parses a phone number, naming the field on error.
pub fn parse_phone(field: &str, text: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(text).map_err(|e| ApiError::field(field, e.to_string()))
}

/// Adds the person with this phone to the organization: a new operator, or a membership
/// for the operator who already has this phone elsewhere. 409 if already a member.
pub fn add_to_organization(
    conn: &Connection,
    rng: &dyn SecureRandom,
    organization_id: &str,
    name: String,
    phone: PhoneNumber,
    access_type: Option<AccessType>,
    now: OffsetDateTime,
) -> Result<OperatorRow, ApiError> {
    if let Some(existing) = operators::live_by_phone(conn, &phone)? {
        if operators::is_member(conn, &existing.id, organization_id)? {
            return Err(ApiError::Conflict(format!(
                "operator {} already has phone {} in this organization; edit that operator instead",
                existing.id, phone
            )));
        }
        operators::add_membership(conn, &existing.id, organization_id, now)?;
        return Ok(existing);
    }
    let op = OperatorRow {
        id: new_id(rng, IdKind::Operator)?,
        name,
        phone,
        access_type,
        created_at: now,
    };
    operators::insert(conn, &op)?;
    operators::add_membership(conn, &op.id, organization_id, now)?;
    Ok(op)
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("operator {id} is not in this organization"))
}

/// Creates an operator, optionally sending an SMS invitation. When the SMS fails the
/// operator and the invite stay created and the answer is 502 `sms_failed`.
#[utoipa::path(
    post, path = "/admin/v1/operators", tag = "operators", security(("admin_token" = [])),
    request_body = CreateOperator,
    responses(
        (status = 201, body = OperatorView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the phone is already an operator here"),
        (status = 502, body = ErrorBody, description = "created, but the SMS could not be sent")
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiJson(body): ApiJson<CreateOperator>,
) -> ApiResult<(StatusCode, Json<OperatorView>)> {
    let name = clean_name("name", &body.name)?;
    let phone = parse_phone("phone", &body.phone)?;
    let now = state.now();
    let (rng, ttl, who) = (state.rng.clone(), state.invite_ttl, caller.clone());
    let secrets = state.secrets.clone();
    let (mut view, issued) = state
        .db
        .write(move |tx| {
            let org_id = who.organization_id();
            let op = add_to_organization(tx, &rng, org_id, name, phone, body.access_type, now)?;
            let issued = if body.send_invite {
                Some(invite_flow::issue(
                    tx,
                    &rng,
                    &secrets,
                    &op,
                    &who.organization,
                    ttl,
                    now,
                )?)
            } else {
                None
            };
            Ok((view(tx, op, &who, now)?, issued))
        })
        .await?;
    tracing::info!(operator_id = %view.operator.id, organization_id = %caller.organization.id, "operator added");
    if let Some(issued) = issued {
        let sms_id = send(&state, &issued, "the operator was created").await?;
        if let Some(invite) = view.invite.as_mut() {
            invite.sms_id = Some(sms_id);
        }
    }
    Ok((StatusCode::CREATED, Json(view)))
}

async fn send(state: &AppState, issued: &IssuedInvite, done: &str) -> ApiResult<String> {
    invite_flow::deliver(state, issued).await.map_err(|e| {
        invite_flow::sms_failed(
            &format!("{done} ({})", issued.operator.id),
            &issued.operator.id,
            &e,
        )
    })
}

/// The organization's operators.
#[utoipa::path(
    get, path = "/admin/v1/operators", tag = "operators", security(("admin_token" = [])),
    responses((status = 200, body = Vec<OperatorView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
) -> ApiResult<Json<Vec<OperatorView>>> {
    let now = state.now();
    let views = state
        .db
        .read(move |conn| {
            operators::list_in_org(conn, caller.organization_id())?
                .into_iter()
                .map(|op| Ok(view(conn, op, &caller, now)?))
                .collect()
        })
        .await?;
    Ok(Json(views))
}

#[utoipa::path(
    get, path = "/admin/v1/operators/{id}", tag = "operators", security(("admin_token" = [])),
    params(("id" = String, Path, description = "operator id")),
    responses((status = 200, body = OperatorView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_one(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<Json<OperatorView>> {
    let now = state.now();
    let view = state
        .db
        .read(move |conn| {
            let op =
                operators::get_in_org(conn, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            Ok(view(conn, op, &caller, now)?)
        })
        .await?;
    Ok(Json(view))
}

/// Changes name, phone or access type; fields left out stay.
#[utoipa::path(
    patch, path = "/admin/v1/operators/{id}", tag = "operators", security(("admin_token" = [])),
    params(("id" = String, Path, description = "operator id")),
    request_body = EditOperator,
    responses(
        (status = 200, body = OperatorView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditOperator>,
) -> ApiResult<Json<OperatorView>> {
    let name = body.name.as_deref().map(|n| clean_name("name", n)).transpose()?;
    let phone = body
        .phone
        .as_deref()
        .map(|p| parse_phone("phone", p))
        .transpose()?;
    let now = state.now();
    let view = state
        .db
        .write(move |tx| {
            let mut op =
                operators::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            if let Some(phone) = phone {
                if let Some(other) = operators::live_by_phone(tx, &phone)?
                    && other.id != op.id
                {
                    return Err(ApiError::Conflict(format!(
                        "phone {phone} already belongs to operator {}",
                        other.id
                    )));
                }
                op.phone = phone;
            }
            if let Some(name) = name {
                op.name = name;
            }
            if let Some(access_type) = body.access_type {
                op.access_type = Some(access_type);
            }
            operators::update(tx, &op)?;
            Ok(view(tx, op, &caller, now)?)
        })
        .await?;
    tracing::info!(operator_id = %view.operator.id, "operator edited");
    Ok(Json(view))
}

/// Removes the operator from this organization (see the module docs).
#[utoipa::path(
    delete, path = "/admin/v1/operators/{id}", tag = "operators", security(("admin_token" = [])),
    params(("id" = String, Path, description = "operator id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn delete(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let now = state.now();
    let org_id = caller.organization.id.clone();
    let issuer = state.issuer.clone();
    let (removed_keys, deleted) = state
        .db
        .write(move |tx| {
            let op = operators::get_in_org(tx, &id, &org_id)?.ok_or_else(|| not_found(&id))?;
            let key_ids = keys::ids_of_operator_in_org(tx, &op.id, &org_id)?;
            let removed = key_ids
                .iter()
                .filter_map(|key_id| keys::get_in_org(tx, key_id, &org_id).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            let refusals: Vec<Refusal<'_>> = removed
                .iter()
                .map(|key| Refusal {
                    key_id: &key.id,
                    machine_ids: &key.machine_ids,
                    min_serial: REVOKED_ENTIRELY,
                })
                .collect();
            revocations::refuse(tx, &issuer, &refusals, now)?;
            for key_id in &key_ids {
                keys::tombstone(tx, key_id, sequence::next(tx)?, now)?;
            }
            invites::revoke_pending(tx, &op.id, Some(&org_id), now)?;
            operators::remove_membership(tx, &op.id, &org_id)?;
            let deleted = operators::organization_ids(tx, &op.id)?.is_empty();
            if deleted {
                invites::revoke_pending(tx, &op.id, None, now)?;
                phones::revoke_all_of_operator(tx, &op.id, now)?;
                operators::mark_deleted(tx, &op.id, now)?;
            }
            Ok((key_ids.len(), deleted))
        })
        .await?;
    tracing::info!(organization_id = %caller.organization.id, removed_keys, operator_deleted = deleted, "operator removed from organization");
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a new invite. Revokes the operator's pending invites and active phones first:
/// this is what an admin does for a lost or replaced phone.
#[utoipa::path(
    post, path = "/admin/v1/operators/{id}/invite", tag = "operators", security(("admin_token" = [])),
    params(("id" = String, Path, description = "operator id")),
    responses(
        (status = 201, body = InviteSummary), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody, description = "invite created, SMS not sent")
    )
)]
pub async fn reinvite(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<InviteSummary>)> {
    let now = state.now();
    let (rng, ttl, issuer) = (state.rng.clone(), state.invite_ttl, state.issuer.clone());
    let secrets = state.secrets.clone();
    let (issued, superseded) = state
        .db
        .write(move |tx| {
            let op =
                operators::get_in_org(tx, &id, caller.organization_id())?.ok_or_else(|| not_found(&id))?;
            invites::revoke_pending(tx, &op.id, None, now)?;
            let superseded = if phones::revoke_all_of_operator(tx, &op.id, now)? > 0 {
                revocations::supersede_operator_grants(tx, &issuer, &op.id, now)?
            } else {
                0
            };
            Ok((
                invite_flow::issue(tx, &rng, &secrets, &op, &caller.organization, ttl, now)?,
                superseded,
            ))
        })
        .await?;
    if superseded > 0 {
        tracing::info!(
            superseded,
            "digital keys superseded: the revoked phone's grants are refused"
        );
    }
    let sms_id = send(
        &state,
        &issued,
        "a new invite was created and the old ones revoked",
    )
    .await?;
    let mut summary = issued.invite.summary_at(now);
    summary.sms_id = Some(sms_id);
    Ok((StatusCode::CREATED, Json(summary)))
}
