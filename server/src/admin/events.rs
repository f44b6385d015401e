//! Usage events as the admin reads them: those on this organization's machines, uploaded
//! by phones of its operators.

use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::events;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use opkey_protocol::api::{ErrorBody, UsageEventView};
use serde::Deserialize;

/// Default and largest number of events one read returns.
const EVENTS_DEFAULT: u32 = 1000;
const EVENTS_MAX: u32 = 10_000;

/// Filters for `GET /admin/v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events at this machine.
    pub machine_id: Option<String>,
    /// Only events uploaded by this operator's phones.
    pub operator_id: Option<String>,
    /// The newest this many events (default 1000, at most 10000), returned oldest first.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// The organization's usage events, oldest first.
#[utoipa::path(
    get, path = "/admin/v1/events", tag = "machines", security(("admin_token" = [])),
    params(EventFilter),
    responses(
        (status = 200, body = Vec<UsageEventView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> ApiResult<Json<Vec<UsageEventView>>> {
    let limit = filter.limit.unwrap_or(EVENTS_DEFAULT);
    if !(1..=EVENTS_MAX).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {EVENTS_MAX}"),
        ));
    }
    let list = state
        .db
        .read(move |conn| {
            Ok(events::list_in_org(
                conn,
                caller.organization_id(),
                filter.machine_id.as_deref(),
                filter.operator_id.as_deref(),
                limit,
            )?)
        })
        .await?;
    Ok(Json(list))
}
