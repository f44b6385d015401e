//! `POST /machine/v1/usage`: usage sessions a machine reports itself. The body is signed
//! (header `x-opkey-machine-signature`: ECDSA P-256, raw r‖s, base64url, over
//! `opkey-machine-usage-v1\n` ‖ hex SHA-256 of the exact body) with the machine's
//! registered key. Refused: an unknown machine (404), a bad signature (401), a `sent_at`
//! more than 24 h from the server's clock (400), a nonce this machine used before (409).
//! Idempotent per (machine, usage session): a re-sent session closes a stored open one
//! and is otherwise a duplicate. One upload is one transaction, nonce included, so a
//! refused upload spends nothing.

use super::signed;
use crate::app::AppState;
use crate::db::machine_usage::{self, Stored};
use crate::error::{ApiError, ApiResult, SignedStep};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use opkey_protocol::api::{
    ErrorBody, MACHINE_USAGE_SESSIONS_MAX, MachineUsageReceipt, MachineUsageSession, MachineUsageUpload,
    SESSION_OPEN,
};

/// Longest key id, operator id and `ended_by` accepted.
const MAX_FIELD_CHARS: usize = 64;

fn check(index: usize, s: &MachineUsageSession) -> Result<(), ApiError> {
    let field = |name: &str| format!("sessions[{index}].{name}");
    let bounded = |name: &str, value: &str| {
        if value.trim().is_empty() {
            Err(ApiError::field(&field(name), "is required"))
        } else if value.chars().count() > MAX_FIELD_CHARS {
            Err(ApiError::field(
                &field(name),
                format!("is longer than {MAX_FIELD_CHARS} characters"),
            ))
        } else {
            Ok(())
        }
    };
    bounded("key_id", &s.key_id)?;
    bounded("ended_by", &s.ended_by)?;
    if let Some(operator_id) = &s.operator_id {
        bounded("operator_id", operator_id)?;
    }
    match s.ended_at {
        Some(_) if s.ended_by == SESSION_OPEN => Err(ApiError::field(
            &field("ended_at"),
            "must be absent while the session is open",
        )),
        Some(ended_at) if ended_at < s.started_at => {
            Err(ApiError::field(&field("ended_at"), "is before started_at"))
        }
        _ => Ok(()),
    }
}

/// Stores the sessions a machine reports; re-sent ones are counted, not stored again.
#[utoipa::path(
    post, path = "/machine/v1/usage", tag = "machine", security(("machine_signature" = [])),
    request_body = MachineUsageUpload,
    responses(
        (status = 200, body = MachineUsageReceipt),
        (status = 400, body = ErrorBody, description = "invalid body, more than 500 sessions, or sent_at more than 24 h from the server's clock"),
        (status = 401, body = ErrorBody, description = "bad_signature: the signature does not verify against the machine's registered key"),
        (status = 404, body = ErrorBody, description = "no machine has this id"),
        (status = 409, body = ErrorBody, description = "conflict: the nonce was used before (a replayed upload)")
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<MachineUsageReceipt>> {
    let upload: MachineUsageUpload = crate::extract::parse_json_object(&body)?;
    let (machine, now) = signed::authenticate(
        &state,
        &headers,
        &body,
        SignedStep::MachineUsage,
        &upload.machine_id,
        upload.sent_at,
        &upload.nonce,
    )
    .await?;
    if upload.sessions.len() > MACHINE_USAGE_SESSIONS_MAX {
        return Err(ApiError::field(
            "sessions",
            format!(
                "holds {} sessions; send at most {MACHINE_USAGE_SESSIONS_MAX} per request",
                upload.sessions.len()
            ),
        ));
    }
    for (index, session) in upload.sessions.iter().enumerate() {
        check(index, session)?;
    }

    let machine_id = machine.id.clone();
    let receipt = state
        .db
        .write(move |tx| {
            signed::spend_nonce(tx, &machine.id, &upload.nonce, upload.sent_at, now)?;
            let mut receipt = MachineUsageReceipt {
                accepted: 0,
                updated: 0,
                duplicates: 0,
            };
            for session in &upload.sessions {
                match machine_usage::store(tx, &machine.id, &machine.organization_id, session, now)? {
                    Stored::Accepted => receipt.accepted += 1,
                    Stored::Updated => receipt.updated += 1,
                    Stored::Duplicate => receipt.duplicates += 1,
                }
            }
            Ok(receipt)
        })
        .await?;
    tracing::debug!(
        %machine_id,
        accepted = receipt.accepted,
        updated = receipt.updated,
        duplicates = receipt.duplicates,
        "machine usage sessions"
    );
    Ok(Json(receipt))
}
