//! The admin API (`/admin/v1`): organizations, admin users, operators (one by one and
//! by file import), invites, machines (and their provisioning bundles), keys, usage
//! events and the dev SMS outbox. Every request acts in one organization (see
//! [`crate::auth`]); every multi-row change is one transaction. Handlers log ids only,
//! never tokens, invite secrets or codes.

pub mod events;
pub mod import;
pub mod invites;
pub mod keys;
pub mod machines;
pub mod operators;
pub mod organizations;
pub mod sms;
pub mod users;
mod xlsx_refs;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::MAX_FILE_BYTES;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// Longest name accepted for operators, machines, organizations and users.
pub const MAX_NAME_CHARS: usize = 200;

/// A trimmed, non-empty name of at most [`MAX_NAME_CHARS`] characters.
pub fn clean_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::field(
            field,
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

pub fn router() -> Router<AppState> {
    let uploads = Router::new()
        .route("/operators/import/preview", post(import::preview))
        .route("/operators/import", post(import::import))
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES));
    Router::new()
        .route("/whoami", get(users::whoami))
        .route(
            "/organizations",
            post(organizations::create).get(organizations::list),
        )
        .route("/users", post(users::create))
        .route("/operators", post(operators::create).get(operators::list))
        .route(
            "/operators/{id}",
            get(operators::get_one)
                .patch(operators::edit)
                .delete(operators::delete),
        )
        .route("/operators/{id}/invite", post(operators::reinvite))
        .route("/operators/import/template.csv", get(import::template))
        .merge(uploads)
        .route("/machines", post(machines::create).get(machines::list))
        .route(
            "/machines/{id}",
            get(machines::get_one)
                .patch(machines::edit)
                .delete(machines::delete),
        )
        .route("/machines/{id}/provisioning", get(machines::provisioning))
        .route("/events", get(events::list))
        .route("/keys", post(keys::create).get(keys::list))
        .route(
            "/keys/{id}",
            get(keys::get_one).patch(keys::edit).delete(keys::delete),
        )
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/keys/{id}/static-pin", get(keys::static_pin))
        .route("/sms", get(sms::outbox))
}
