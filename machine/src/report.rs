//! Reporting usage sessions to the backend when the unit is online (`POST
//! {server}/machine/v1/usage`, docs/API.md "Machine API"). The [`Reporter`] takes the
//! [`Machine`]'s pending sessions, signs the exact body with the machine key, sends it, and
//! acknowledges the sessions only once the backend answered with a receipt. The backend
//! stores each (machine, session) once, so a retry after a lost answer is always safe:
//! nothing is lost and nothing is stored twice.
//!
//! Async and outside the synchronous [`Machine`]: the machine is locked only to read what
//! is pending and to acknowledge it, never across a request, so the BLE side never waits
//! on the network. Never logs or prints the key.

use crate::{Machine, MachineError, UsageSession};
use opkey_protocol::Clock;
use opkey_protocol::api::{
    ErrorBody, MACHINE_SIGNATURE_HEADER, MACHINE_USAGE_SESSIONS_MAX, MachineUsageReceipt,
    MachineUsageSession, MachineUsageUpload, SESSION_OPEN, machine_usage_message,
};
use opkey_protocol::encoding::b64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use url::Url;

/// How often `opkey-machine run` reports unless told otherwise.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(30);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a machine API request failed: a usage report (the sessions stay pending) or a
/// keypad table refresh (the table held stays).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the server URL {0} cannot hold the machine API path")]
    BadServerUrl(String),
    #[error("the machine key does not match the machine")]
    KeyMismatch,
    #[error("cannot reach the backend: {0}")]
    Unreachable(String),
    #[error("the backend refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the backend's answer is not what was asked for: {0}")]
    BadAnswer(String),
    #[error("cannot sign the request")]
    Sign,
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// What one report delivered, summed over its requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Sessions sent (and now acknowledged).
    pub sessions: u32,
    pub accepted: u32,
    pub updated: u32,
    pub duplicates: u32,
}

/// The machine's signed requests to the backend's machine API: one endpoint, the machine
/// key, a fresh nonce per request. Shared by the [`Reporter`] and the keypad table
/// [`crate::refresh::KeypadRefresher`].
pub(crate) struct MachineClient {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    endpoint: Url,
    http: reqwest::Client,
    pub(crate) clock: Arc<dyn Clock>,
}

impl MachineClient {
    /// A client for `path` (e.g. `machine/v1/usage`) under the base URL `server`, signing
    /// with the machine key, which must be `machine`'s.
    pub(crate) fn new(
        machine: &Mutex<Machine>,
        machine_key_pkcs8: &[u8],
        server: &Url,
        path: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ReportError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, machine_key_pkcs8, &rng)
            .map_err(|_| ReportError::KeyMismatch)?;
        if key.public_key().as_ref() != lock(machine).public_key() {
            return Err(ReportError::KeyMismatch);
        }
        let mut base = server.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base
            .join(path)
            .map_err(|_| ReportError::BadServerUrl(server.to_string()))?;
        // reqwest is built with `rustls-no-provider`: ring is our one crypto library.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ReportError::Unreachable(e.to_string()))?;
        Ok(Self {
            key,
            rng,
            endpoint,
            http,
            clock,
        })
    }

    pub(crate) fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// 16 fresh random bytes, base64url: a request's nonce.
    pub(crate) fn nonce(&self) -> Result<String, ReportError> {
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce).map_err(|_| ReportError::Sign)?;
        Ok(b64(&nonce))
    }

    /// POSTs `body` with the machine's signature over `message(body)` (raw `r ‖ s`,
    /// base64url, header [`MACHINE_SIGNATURE_HEADER`]). A non-2xx answer is `Refused`;
    /// otherwise the status and the body text.
    pub(crate) async fn post(
        &self,
        body: Vec<u8>,
        message: fn(&[u8]) -> Vec<u8>,
    ) -> Result<(u16, String), ReportError> {
        let signature = self
            .key
            .sign(&self.rng, &message(&body))
            .map_err(|_| ReportError::Sign)?;
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(MACHINE_SIGNATURE_HEADER, b64(signature.as_ref()))
            .body(body)
            .send()
            .await
            .map_err(|e| ReportError::Unreachable(describe(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ReportError::Unreachable(describe(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error.message)
                .unwrap_or(text);
            return Err(ReportError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        Ok((status.as_u16(), text))
    }
}

/// Sends a machine's closed usage sessions to the backend.
pub struct Reporter {
    machine: Arc<Mutex<Machine>>,
    client: MachineClient,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("endpoint", &self.client.endpoint().as_str())
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter for `machine` to the backend at `server` (its base URL), signing with the
    /// machine's key (the PKCS#8 the machine was opened with).
    pub fn new(
        machine: Arc<Mutex<Machine>>,
        machine_key_pkcs8: &[u8],
        server: &Url,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ReportError> {
        let client = MachineClient::new(&machine, machine_key_pkcs8, server, "machine/v1/usage", clock)?;
        Ok(Self { machine, client })
    }

    /// Sends every pending session (at most 500 per request) and acknowledges what the
    /// backend stored. On an error, what was acknowledged before it stays acknowledged and
    /// the rest stays pending for the next report.
    pub async fn report(&self) -> Result<Delivered, ReportError> {
        let mut delivered = Delivered::default();
        loop {
            let (machine_id, batch) = {
                let machine = lock(&self.machine);
                let mut pending = machine.pending_usage();
                pending.truncate(MACHINE_USAGE_SESSIONS_MAX);
                (machine.machine_id().to_owned(), pending)
            };
            let Some(upto) = batch.last().map(|s| s.usage_session) else {
                return Ok(delivered);
            };
            let receipt = self.send(machine_id, &batch).await?;
            lock(&self.machine).acknowledge_usage(upto)?;
            delivered.sessions += batch.len() as u32;
            delivered.accepted += receipt.accepted;
            delivered.updated += receipt.updated;
            delivered.duplicates += receipt.duplicates;
        }
    }

    /// Reports every `every` (the first right away), forever; each outcome goes to
    /// `on_result`. A failure is retried at the next tick.
    pub async fn run(&self, every: Duration, on_result: impl Fn(Result<Delivered, ReportError>)) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            on_result(self.report().await);
        }
    }

    async fn send(
        &self,
        machine_id: String,
        batch: &[UsageSession],
    ) -> Result<MachineUsageReceipt, ReportError> {
        let upload = MachineUsageUpload {
            machine_id,
            sent_at: self.client.clock.now(),
            nonce: self.client.nonce()?,
            sessions: batch.iter().map(wire_session).collect(),
        };
        let body = serde_json::to_vec(&upload).expect("an upload always serializes");
        let (_, text) = self.client.post(body, machine_usage_message).await?;
        serde_json::from_str(&text).map_err(|e| ReportError::BadAnswer(e.to_string()))
    }
}

/// A logged session as the backend wants it.
fn wire_session(s: &UsageSession) -> MachineUsageSession {
    MachineUsageSession {
        usage_session: s.usage_session,
        key_id: s.key_id.clone(),
        operator_id: s.operator_id.clone(),
        started_at: s.started_at,
        ended_at: s.ended_at,
        ended_by: s.ended_by.map_or(SESSION_OPEN, |end| end.as_str()).to_owned(),
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

pub(crate) fn lock(machine: &Mutex<Machine>) -> MutexGuard<'_, Machine> {
    machine.lock().unwrap_or_else(|e| e.into_inner())
}
