//! `POST /machine/v1/usage`: usage sessions a machine reports itself. The body is signed
//! (header `x-opkey-machine-signature`: ECDSA P-256, raw r‖s, base64url, over
//! `opkey-machine-usage-v1\n` ‖ hex SHA-256 of the exact body) with the machine's
//! registered key. Refused: an unknown machine (404), a bad signature (401), a `sent_at`
//! more than 24 h from the server's clock (400), a nonce this machine used before (409).
//! Idempotent per (machine, usage session): a re-sent session closes a stored open one
//! and is otherwise a duplicate. One upload is one transaction, nonce included, so a
//! refused upload spends nothing.

use crate::app::AppState;
use crate::db::machine_usage::{self, Stored};
use crate::db::machines;
use crate::error::{ApiError, ApiResult, SignedStep};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use opkey_protocol::api::{
    ErrorBody, MACHINE_SIGNATURE_HEADER, MACHINE_USAGE_SESSIONS_MAX, MachineUsageReceipt,
    MachineUsageSession, MachineUsageUpload, SESSION_OPEN, machine_usage_message,
};
use opkey_protocol::encoding::unb64;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

/// How far a machine's `sent_at` may be from the server's clock.
pub const MAX_CLOCK_DIFFERENCE: time::Duration = time::Duration::hours(24);
/// Random bytes in a nonce.
pub const NONCE_BYTES: usize = 16;
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

/// The signature over `body` by the machine's registered key.
fn verify(ble_public_key: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let bad = || ApiError::BadSignature(SignedStep::MachineUsage);
    let public_key = ble_public_key.and_then(unb64).ok_or_else(bad)?;
    let signature = headers
        .get(MACHINE_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| unb64(v.trim()))
        .ok_or_else(bad)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(&machine_usage_message(body), &signature)
        .map_err(|_| bad())
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
    let upload: MachineUsageUpload = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("the body is not a MachineUsageUpload: {e}")))?;
    let machine_id = upload.machine_id.clone();
    let machine = state
        .db
        .read(move |conn| {
            machines::get(conn, &machine_id)?
                .ok_or_else(|| ApiError::NotFound(format!("no machine {machine_id} is registered")))
        })
        .await?;
    verify(machine.ble_public_key.as_deref(), &headers, &body)?;

    let now = state.now();
    if (upload.sent_at - now).abs() > MAX_CLOCK_DIFFERENCE {
        return Err(ApiError::field(
            "sent_at",
            format!("is more than 24 hours from the server's clock ({now}): set the machine's clock"),
        ));
    }
    if unb64(&upload.nonce).is_none_or(|n| n.len() != NONCE_BYTES) {
        return Err(ApiError::field(
            "nonce",
            format!("must be {NONCE_BYTES} random bytes, base64url"),
        ));
    }
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

    // Kept for as long as an upload with this sent_at could still be accepted.
    let nonce_expires_at = upload.sent_at + MAX_CLOCK_DIFFERENCE;
    let machine_id = machine.id.clone();
    let receipt = state
        .db
        .write(move |tx| {
            machine_usage::prune_nonces(tx, now)?;
            if !machine_usage::use_nonce(tx, &machine.id, &upload.nonce, nonce_expires_at)? {
                return Err(ApiError::Conflict(
                    "this nonce was used before: a replayed upload is refused; send a new nonce".to_owned(),
                ));
            }
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
