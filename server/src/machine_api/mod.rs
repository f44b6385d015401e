//! The machine API (`/machine/v1`): what a telematics unit that is online sends the backend
//! itself. A machine proves who it is by signing each request with its machine key (the
//! BLE key the admin registered), so no shared secret exists; a fresh nonce and a bounded
//! clock difference keep a captured request from being replayed (`signed`). Usage sessions
//! go up (`usage`); the keypad table comes down (`keypad`).

pub mod keypad;
pub mod signed;
pub mod usage;

use crate::app::AppState;
use axum::Router;
use axum::routing::post;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/usage", post(usage::upload))
        .route("/keypad", post(keypad::table))
}
