//! The operator (phone) API (`/v1`): redeem an invite, open a session by signing a
//! challenge, sync keys (and Digital Key grants and revocation lists) by cursor, upload
//! usage events. Phones prove possession of their enrolled P-256 key;
//! no long-lived bearer secret exists. Handlers log ids only, never tokens or codes.

pub mod events;
pub mod redeem;
pub mod session;
pub mod sync;
pub mod throttle;

use crate::app::AppState;
use axum::Router;
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invites/redeem", post(redeem::redeem))
        .route("/session/challenge", post(session::challenge))
        .route("/session", post(session::open))
        .route("/sync", get(sync::sync))
        .route("/events", post(events::upload))
}
