//! Usage events from phones (unlock and lock attempts, usage sessions), uploaded from
//! the phone's outbox. Idempotent: the phone names each event, and an id this phone
//! already sent is counted as a duplicate and not stored again, so a retry after a lost
//! answer is always safe. One upload is one transaction.

use crate::app::AppState;
use crate::auth::PhoneSession;
use crate::db::events::{self, Sender};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use axum::Json;
use axum::extract::State;
use opkey_protocol::api::{
    ErrorBody, USAGE_EVENT_ID_MAX_CHARS, USAGE_EVENTS_MAX, UsageEvent, UsageEventsReceipt, UsageEventsUpload,
};

/// Longest machine id, key id and outcome accepted.
const MAX_FIELD_CHARS: usize = 64;

fn check(index: usize, e: &UsageEvent) -> Result<(), ApiError> {
    let field = |name: &str| format!("events[{index}].{name}");
    let bounded = |name: &str, value: &str, max: usize| {
        if value.trim().is_empty() {
            Err(ApiError::field(&field(name), "is required"))
        } else if value.chars().count() > max {
            Err(ApiError::field(
                &field(name),
                format!("is longer than {max} characters"),
            ))
        } else {
            Ok(())
        }
    };
    bounded("id", &e.id, USAGE_EVENT_ID_MAX_CHARS)?;
    bounded("machine_id", &e.machine_id, MAX_FIELD_CHARS)?;
    bounded("outcome", &e.outcome, MAX_FIELD_CHARS)?;
    if let Some(key_id) = &e.key_id {
        bounded("key_id", key_id, MAX_FIELD_CHARS)?;
    }
    if let Some(ended_at) = e.ended_at
        && ended_at < e.at
    {
        return Err(ApiError::field(&field("ended_at"), "is before at"));
    }
    Ok(())
}

/// Stores usage events; repeats of already stored events are counted, not stored.
#[utoipa::path(
    post, path = "/v1/events", tag = "phone", security(("phone_session" = [])),
    request_body = UsageEventsUpload,
    responses(
        (status = 200, body = UsageEventsReceipt),
        (status = 400, body = ErrorBody, description = "more than 500 events, or an invalid event"),
        (status = 401, body = ErrorBody, description = "session_expired"),
        (status = 403, body = ErrorBody, description = "phone_revoked")
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    session: PhoneSession,
    ApiJson(body): ApiJson<UsageEventsUpload>,
) -> ApiResult<Json<UsageEventsReceipt>> {
    if body.events.len() > USAGE_EVENTS_MAX {
        return Err(ApiError::field(
            "events",
            format!(
                "holds {} events; send at most {USAGE_EVENTS_MAX} per request",
                body.events.len()
            ),
        ));
    }
    for (index, event) in body.events.iter().enumerate() {
        check(index, event)?;
    }
    let now = state.now();
    let phone_id = session.phone_id.clone();
    let receipt = state
        .db
        .write(move |tx| {
            let mut receipt = UsageEventsReceipt {
                accepted: 0,
                duplicates: 0,
            };
            for event in &body.events {
                let organization_id =
                    events::machine_organization_of_member(tx, &event.machine_id, &session.operator_id)?;
                let sender = Sender {
                    phone_id: &session.phone_id,
                    operator_id: &session.operator_id,
                    organization_id: organization_id.as_deref(),
                };
                if events::insert(tx, sender, event, now)? {
                    receipt.accepted += 1;
                } else {
                    receipt.duplicates += 1;
                }
            }
            Ok(receipt)
        })
        .await?;
    tracing::debug!(%phone_id, accepted = receipt.accepted, duplicates = receipt.duplicates, "usage events");
    Ok(Json(receipt))
}
