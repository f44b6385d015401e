//! What every signed machine request shares: the machine named in the body, the
//! signature by its registered key over the step's message, a `sent_at` within 24 h of
//! the server's clock, and a nonce used once (spent inside the request's transaction, so a
//! refused request spends nothing).

use crate::app::AppState;
use crate::db::{machine_usage, machines};
use crate::error::{ApiError, SignedStep};
use axum::http::HeaderMap;
use opkey_protocol::Machine;
use opkey_protocol::api::{MACHINE_SIGNATURE_HEADER, machine_keypad_message, machine_usage_message};
use opkey_protocol::encoding::unb64;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use rusqlite::Connection;
use time::OffsetDateTime;

/// How far a machine's `sent_at` may be from the server's clock.
pub const MAX_CLOCK_DIFFERENCE: time::Duration = time::Duration::hours(24);
/// Random bytes in a nonce.
pub const NONCE_BYTES: usize = 16;

/// The signature over `body` by the machine's registered key.
fn verify(
    ble_public_key: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    step: SignedStep,
) -> Result<(), ApiError> {
    let bad = || ApiError::BadSignature(step);
    let message = match step {
        SignedStep::MachineKeypad => machine_keypad_message(body),
        _ => machine_usage_message(body),
    };
    let public_key = ble_public_key.and_then(unb64).ok_or_else(bad)?;
    let signature = headers
        .get(MACHINE_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| unb64(v.trim()))
        .ok_or_else(bad)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(&message, &signature)
        .map_err(|_| bad())
}

/// Finds the machine (404), checks the signature (401), `sent_at` and the nonce's shape
/// (400). Returns the machine and the server's time of the check.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    step: SignedStep,
    machine_id: &str,
    sent_at: OffsetDateTime,
    nonce: &str,
) -> Result<(Machine, OffsetDateTime), ApiError> {
    let id = machine_id.to_owned();
    let machine = state
        .db
        .read(move |conn| {
            machines::get(conn, &id)?
                .ok_or_else(|| ApiError::NotFound(format!("no machine {id} is registered")))
        })
        .await?;
    verify(machine.ble_public_key.as_deref(), headers, body, step)?;
    let now = state.now();
    if (sent_at - now).abs() > MAX_CLOCK_DIFFERENCE {
        return Err(ApiError::field(
            "sent_at",
            format!("is more than 24 hours from the server's clock ({now}): set the machine's clock"),
        ));
    }
    if unb64(nonce).is_none_or(|n| n.len() != NONCE_BYTES) {
        return Err(ApiError::field(
            "nonce",
            format!("must be {NONCE_BYTES} random bytes, base64url"),
        ));
    }
    Ok((machine, now))
}

/// Spends the nonce inside the request's transaction; a nonce used before is a replay (409).
pub fn spend_nonce(
    conn: &Connection,
    machine_id: &str,
    nonce: &str,
    sent_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    machine_usage::prune_nonces(conn, now)?;
    // Kept for as long as a request with this sent_at could still be accepted.
    if !machine_usage::use_nonce(conn, machine_id, nonce, sent_at + MAX_CLOCK_DIFFERENCE)? {
        return Err(ApiError::Conflict(
            "this nonce was used before: a replayed request is refused; send a new nonce".to_owned(),
        ));
    }
    Ok(())
}
