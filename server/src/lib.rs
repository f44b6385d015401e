//! # opkey-server
//!
//! OpKey's reference Access Management backend: the admin API of a fleet backend
//! (organizations, operators, machines, keys, SMS invites, file import) and the operator
//! API the phone app talks to (redeem an invite, open a session, sync keys by cursor).
//! axum over one SQLite file.
//!
//! - [`config`]: how a server is set up ([`ServerConfig`]);
//! - `app`: shared state and the router;
//! - `auth`: who is calling (admin tokens, phone sessions);
//! - `admin`, `operator_api`: the two HTTP APIs; `machine_api`: usage sessions that
//!   telematics units report themselves, signed with their machine key;
//! - `digital_key`: the issuer key, grants and per-machine revocation lists;
//! - `keypad`: Rolling PIN slots and seeds, Static PINs, per-machine keypad tables;
//! - `db`: the one place that talks to SQLite (schema, migrations, queries);
//! - `sms`: the invitation text and the gateways that send it;
//! - [`app_links`]: the apps that open invite links and the `/.well-known` files that say so;
//!   `landing`: the page an invite link shows in a browser;
//! - `openapi`: the generated OpenAPI document.
//!
//! Time comes only from the configured [`opkey_protocol::Clock`]; randomness from ring.
//! Tokens, invite secrets and codes are stored as SHA-256 digests and never logged (an
//! invite's short code is also kept sealed, for its landing page); the
//! issuer's private key lives only in its file and in memory. Rolling PIN seeds and Static
//! PINs are stored sealed under the secrets key (`keypad::secrets`), a second file beside
//! the database.

pub mod admin_client;
pub mod app_links;
pub mod config;
pub mod sms;

mod admin;
mod app;
mod auth;
mod db;
mod digital_key;
mod error;
mod extract;
mod ids;
mod key_file;
mod keypad;
mod landing;
mod machine_api;
mod openapi;
mod operator_api;

pub use config::{AndroidApp, AppLinks, HttpSmsConfig, ServerConfig, SmsConfig};
pub use error::ServerError;

use app::{AppState, Inner};
use db::Db;
use digital_key::Issuer;
use ids::{IdKind, new_id};
use opkey_protocol::Organization;
use opkey_protocol::encoding::sha256_hex;
use ring::rand::SystemRandom;
use sms::SmsGateway;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// A server running on the current tokio runtime. Dropping it stops the server too;
/// [`RunningServer::shutdown`] also waits until it has stopped.
#[derive(Debug)]
pub struct RunningServer {
    url: Url,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The server's base URL, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Stops accepting connections, lets requests in flight finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => tracing::info!("server stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "server stopped with an error"),
            Err(e) => tracing::error!(error = %e, "server task failed"),
        }
    }
}

/// Opens the database, binds `listen` (port 0 picks a free port) and serves on the
/// current tokio runtime.
pub async fn start(config: ServerConfig, listen: SocketAddr) -> Result<RunningServer, ServerError> {
    // The HTTP SMS gateway's reqwest client needs a rustls crypto provider: ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if config.admin_token.trim().is_empty() {
        return Err(ServerError::Config(
            "the admin token must not be empty".to_owned(),
        ));
    }
    if config.invite_ttl <= time::Duration::ZERO {
        return Err(ServerError::Config(
            "the invite lifetime must be positive".to_owned(),
        ));
    }
    if config.grant_lifetime <= time::Duration::ZERO || config.grant_lifetime > config::DEFAULT_GRANT_LIFETIME
    {
        return Err(ServerError::Config(
            "the grant lifetime must be positive and at most 7 days (PROTOCOL.md 2.2)".to_owned(),
        ));
    }
    if config.challenge_lifetime_s == 0 {
        return Err(ServerError::Config(
            "the challenge lifetime must be at least 1 second".to_owned(),
        ));
    }
    let app_links = config
        .app_links
        .validated()
        .map_err(|e| ServerError::Config(format!("app links: {e}")))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError::Bind { addr: listen, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr: listen, source })?;
    let url = Url::parse(&format!("http://{local}/"))
        .map_err(|e| ServerError::Config(format!("cannot form the server URL: {e}")))?;

    let rng = SystemRandom::new();
    let (db, default_organization, issuer, secrets) = {
        let (path, key_path, secrets_path, name, now, rng) = (
            config.db_path.clone(),
            config.issuer_key_file(),
            config.secrets_key_file(),
            config.default_organization_name.clone(),
            config.clock.now(),
            rng.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let issuer = Issuer::load_or_create(&key_path).map_err(|source| ServerError::IssuerKey {
                path: key_path,
                source,
            })?;
            let secrets = match &secrets_path {
                Some(path) => keypad::SecretsKey::load_or_create(path),
                None => keypad::SecretsKey::ephemeral(&rng),
            }
            .map_err(|source| ServerError::SecretsKey {
                path: secrets_path.clone().unwrap_or_default(),
                source,
            })?;
            let (db, org) = open_database(&path, name, now, &rng)?;
            Ok::<_, ServerError>((db, org, issuer, secrets))
        })
        .await
        .map_err(|e| ServerError::Config(format!("database setup task failed: {e}")))??
    };
    let sms: Arc<dyn SmsGateway> = match &config.sms {
        SmsConfig::Dev => Arc::new(sms::dev::DevGateway::new(db.clone())),
        SmsConfig::Http(http) => Arc::new(sms::http::HttpGateway::new(http.clone())?),
    };
    let issuer = Arc::new(issuer);
    let state = AppState::new(Inner {
        db,
        clock: config.clock.clone(),
        rng,
        sms,
        invite_base_url: config.invite_base_url.clone().unwrap_or_else(|| url.clone()),
        public_url: config
            .public_url
            .clone()
            .or_else(|| config.invite_base_url.clone())
            .unwrap_or_else(|| url.clone()),
        invite_ttl: config.invite_ttl,
        app_links,
        bootstrap_digest: sha256_hex(config.admin_token.as_bytes()),
        default_organization,
        redeem_throttle: Default::default(),
        issuer: issuer.clone(),
        secrets: Arc::new(secrets),
        grant_lifetime: config.grant_lifetime,
        challenge_lifetime_s: config.challenge_lifetime_s,
        relock_after_s: config.relock_after_s,
    });
    let app = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(
        %url,
        db = %config.db_path.display(),
        sms = ?config.sms,
        issuer_public_key = %issuer.public_key(),
        "server started"
    );
    Ok(RunningServer { url, stop, task })
}

/// Opens and migrates the database and makes sure the default organization exists.
fn open_database(
    path: &std::path::Path,
    default_name: String,
    now: time::OffsetDateTime,
    rng: &SystemRandom,
) -> Result<(Db, Organization), ServerError> {
    let db = Db::open(path)?;
    let org = db
        .write_blocking(|tx| {
            if let Some(org) = db::organizations::default_organization(tx)? {
                return Ok(org);
            }
            let org = Organization {
                id: new_id(rng, IdKind::Organization)?,
                name: default_name,
            };
            db::organizations::insert(tx, &org, true, now)?;
            Ok(org)
        })
        .map_err(|e| ServerError::Config(format!("cannot create the default organization: {e}")))?;
    Ok((db, org))
}

/// The OpenAPI document of both APIs, as pretty-printed JSON.
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(&openapi::document_json())
        .expect("the OpenAPI document is plain data and always serialises")
}
