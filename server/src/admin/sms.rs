//! The dev gateway's outbox, for reading invitations when no real SMS is sent.

use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::outbox;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use opkey_protocol::api::{ErrorBody, SmsMessage};

/// Messages the dev gateway kept, newest last.
#[utoipa::path(
    get, path = "/admin/v1/sms", tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, body = Vec<SmsMessage>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "an HTTP gateway is configured")
    )
)]
pub async fn outbox(
    State(state): State<AppState>,
    AccessManager(_caller): AccessManager,
) -> ApiResult<Json<Vec<SmsMessage>>> {
    if !state.sms.keeps_outbox() {
        return Err(ApiError::NotFound(
            "the SMS outbox is only kept by the dev gateway".to_owned(),
        ));
    }
    Ok(Json(state.db.read(|conn| Ok(outbox::list(conn)?)).await?))
}
