//! `POST /machine/v1/keypad`: a machine with a keypad fetches its keypad table (Rolling PIN
//! seeds, Static PINs, cards), signed like a usage upload but over
//! `opkey-machine-keypad-v1\n` ‖ hex SHA-256 of the body, with the same freshness and
//! nonce rules (`signed`). Answers 204 when the machine's `known_version` is current.

use super::signed;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult, SignedStep};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opkey_protocol::Keypad;
use opkey_protocol::api::{ErrorBody, KeypadTable, MachineKeypadRequest};

/// The machine's keypad table, unless it already holds the latest.
#[utoipa::path(
    post, path = "/machine/v1/keypad", tag = "machine", security(("machine_signature" = [])),
    request_body = MachineKeypadRequest,
    responses(
        (status = 200, body = KeypadTable, description = "the table (secret: seeds and PINs)"),
        (status = 204, description = "known_version is already the latest"),
        (status = 400, body = ErrorBody, description = "invalid body, or sent_at more than 24 h from the server's clock"),
        (status = 401, body = ErrorBody, description = "bad_signature: the signature does not verify against the machine's registered key"),
        (status = 404, body = ErrorBody, description = "no machine has this id"),
        (status = 409, body = ErrorBody, description = "conflict: the nonce was used before, or the machine has no keypad")
    )
)]
pub async fn table(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let request: MachineKeypadRequest = crate::extract::parse_json_object(&body)?;
    let (machine, now) = signed::authenticate(
        &state,
        &headers,
        &body,
        SignedStep::MachineKeypad,
        &request.machine_id,
        request.sent_at,
        &request.nonce,
    )
    .await?;
    if machine.keypad == Keypad::None {
        return Err(ApiError::Conflict(format!(
            "machine '{}' ({}) is registered without a keypad: it has no keypad table",
            machine.name, machine.id
        )));
    }
    let secrets = state.secrets.clone();
    let machine_id = machine.id.clone();
    let table = state
        .db
        .write(move |tx| {
            signed::spend_nonce(tx, &machine.id, &request.nonce, request.sent_at, now)?;
            let version = u64::try_from(crate::db::machines::keypad_seq(tx, &machine.id)?).unwrap_or(0);
            if request.known_version >= version {
                return Ok(None);
            }
            Ok(Some(crate::keypad::table::build(tx, &secrets, &machine, now)?))
        })
        .await?;
    match table {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(table) => {
            tracing::debug!(%machine_id, version = table.version, "keypad table sent");
            Ok(Json::<KeypadTable>(table).into_response())
        }
    }
}
