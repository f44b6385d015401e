//! The running application: shared state and the router that mounts the admin API, the
//! operator API, the machine API, the app-link files and invite landing page, the OpenAPI
//! document and the health check.

use crate::db::Db;
use crate::digital_key::Issuer;
use crate::error::ApiError;
use crate::operator_api::throttle::RedeemThrottle;
use crate::sms::SmsGateway;
use crate::{admin, app_links, landing, machine_api, openapi, operator_api};
use axum::Router;
use axum::routing::get;
use opkey_protocol::{Clock, Organization};
use ring::rand::SystemRandom;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub rng: SystemRandom,
    pub sms: Arc<dyn SmsGateway>,
    /// Invite links are `{invite_base_url}/i/{token}`.
    pub invite_base_url: Url,
    /// Where telematics units reach this server, handed out in provisioning bundles.
    pub public_url: Url,
    pub invite_ttl: time::Duration,
    /// The apps that open invite links (validated, fingerprints upper-case).
    pub app_links: crate::app_links::AppLinks,
    /// SHA-256 of the bootstrap admin token.
    pub bootstrap_digest: String,
    pub default_organization: Organization,
    pub redeem_throttle: RedeemThrottle,
    /// Signs grants and revocation lists.
    pub issuer: Arc<Issuer>,
    /// Seals Rolling PIN seeds and Static PINs at rest.
    pub secrets: Arc<crate::keypad::SecretsKey>,
    /// How long a grant is valid (never past its key's end).
    pub grant_lifetime: time::Duration,
    /// Machine timings handed out in provisioning bundles.
    pub challenge_lifetime_s: u16,
    pub relock_after_s: u16,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("sms", &self.sms)
            .field("invite_base_url", &self.invite_base_url.as_str())
            .field("default_organization", &self.default_organization.id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The link an invite token opens.
    pub fn invite_link(&self, token: &str) -> String {
        format!(
            "{}/i/{token}",
            self.invite_base_url.as_str().trim_end_matches('/')
        )
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/admin/v1", admin::router())
        .nest("/v1", operator_api::router())
        .nest("/machine/v1", machine_api::router())
        .route("/.well-known/assetlinks.json", get(app_links::assetlinks))
        .route("/.well-known/apple-app-site-association", get(app_links::apple))
        .route("/i/{token}", get(landing::page))
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint: see /openapi.json for the API".to_owned())
}
