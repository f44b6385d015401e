//! The one HTTP client of the core: JSON over reqwest with rustls and ring, retries with
//! exponential backoff on connect errors, timeouts, cut-off bodies and 5xx answers
//! (never on 4xx), the backend's error bodies decoded into [`Error`], and the send and
//! receive instants of each exchange for the server-time offset.
//!
//! Logs method, path, status, attempt and duration; never a header, a body, a token or
//! a signature.

use crate::config::{CoreConfig, RetryPolicy};
use crate::error::Error;
use opkey_protocol::Clock;
use opkey_protocol::api::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;
use time::OffsetDateTime;
use url::Url;

/// An answer and when (by the injected clock) its request left and its body arrived.
#[derive(Debug)]
pub(crate) struct Answer<T> {
    pub body: T,
    pub sent: OffsetDateTime,
    pub received: OffsetDateTime,
}

/// One estimate of server time minus phone time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetSample {
    pub offset_ms: i64,
    pub round_trip: time::Duration,
}

impl<T> Answer<T> {
    /// The server's clock read `server_time` somewhere between send and receive; the
    /// midpoint is the best guess, good to half the round trip.
    pub(crate) fn offset(&self, server_time: OffsetDateTime) -> OffsetSample {
        let round_trip = self.received - self.sent;
        let midpoint: OffsetDateTime = self.sent + round_trip / 2;
        let ahead: time::Duration = server_time - midpoint;
        OffsetSample {
            offset_ms: ahead.whole_milliseconds() as i64,
            round_trip,
        }
    }
}

impl OffsetSample {
    /// Keeps the sample with the shorter round trip: its midpoint guess is tighter.
    pub(crate) fn best(a: Option<Self>, b: Self) -> Self {
        match a {
            Some(a) if a.round_trip <= b.round_trip => a,
            _ => b,
        }
    }
}

/// Why one try failed; decides whether to try again.
#[derive(Debug)]
enum Failure {
    Connect(String),
    Timeout,
    Cut(String),
    Status {
        status: u16,
        code: Option<opkey_protocol::api::ErrorCode>,
        message: String,
    },
    Decode(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Connect(_) | Failure::Timeout | Failure::Cut(_) => true,
            Failure::Status { status, .. } => *status >= 500,
            Failure::Decode(_) => false,
        }
    }

    fn into_error(self) -> Error {
        match self {
            Failure::Connect(reason) => Error::Network { reason },
            Failure::Timeout => Error::Timeout,
            Failure::Cut(reason) => Error::BadResponse {
                reason: format!("the answer was cut off: {reason}"),
            },
            Failure::Status {
                status,
                code,
                message,
            } => Error::Server {
                status,
                code,
                message,
            },
            Failure::Decode(reason) => Error::BadResponse { reason },
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl Http {
    pub(crate) fn new(config: &CoreConfig, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        // reqwest is built with `rustls-no-provider`: ring is the one crypto library.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("opkey-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Network {
                reason: format!("secure connections could not be set up: {}", describe(e)),
            })?;
        Ok(Self {
            client,
            retry: config.retry,
            clock,
        })
    }

    pub(crate) async fn post<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        url: Url,
        body: &Req,
        bearer: Option<&str>,
    ) -> Result<Answer<Resp>, Error> {
        self.call(Method::POST, url, Some(body), bearer).await
    }

    pub(crate) async fn get<Resp: DeserializeOwned>(
        &self,
        url: Url,
        bearer: Option<&str>,
    ) -> Result<Answer<Resp>, Error> {
        self.call::<(), Resp>(Method::GET, url, None, bearer).await
    }

    async fn call<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Req>,
        bearer: Option<&str>,
    ) -> Result<Answer<Resp>, Error> {
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.once(method.clone(), url.clone(), body, bearer).await;
            let ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(answer) => {
                    tracing::debug!(%method, path = url.path(), attempt, ms, "request ok");
                    return Ok(answer);
                }
                Err(f) if f.retryable() && attempt < attempts => {
                    let wait = self.retry.delay_after(attempt);
                    tracing::info!(
                        %method, path = url.path(), attempt, ms, wait_ms = wait.as_millis() as u64,
                        failure = ?FailureKind(&f), "request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(f) => {
                    tracing::warn!(%method, path = url.path(), attempt, ms, failure = ?FailureKind(&f), "request failed");
                    return Err(f.into_error());
                }
            }
        }
    }

    async fn once<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Req>,
        bearer: Option<&str>,
    ) -> Result<Answer<Resp>, Failure> {
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let sent = self.clock.now();
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(classify)?;
        let received = self.clock.now();
        if !status.is_success() {
            return Err(status_failure(status, &bytes));
        }
        let body = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Decode(format!("HTTP {} with an invalid body: {e}", status.as_u16())))?;
        Ok(Answer { body, sent, received })
    }
}

/// `base` joined with `path`, keeping any path prefix `base` has (`https://h/api` →
/// `https://h/api/v1/sync`).
pub(crate) fn endpoint(base: &Url, path: &str) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.set_query(None);
    base.set_fragment(None);
    base.join(path).unwrap_or(base)
}

fn status_failure(status: StatusCode, bytes: &[u8]) -> Failure {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Failure::Status {
            status: status.as_u16(),
            code: Some(body.error.code),
            message: body.error.message,
        },
        Err(_) => Failure::Status {
            status: status.as_u16(),
            code: None,
            message: status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned(),
        },
    }
}

fn classify(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Timeout
    } else if e.is_body() || e.is_decode() {
        Failure::Cut(describe(e))
    } else {
        Failure::Connect(describe(e))
    }
}

/// The error and its causes, without the URL (short, and never carries a secret).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The kind of a failure, for logs (the server's message stays out of them).
struct FailureKind<'a>(&'a Failure);

impl std::fmt::Debug for FailureKind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Failure::Connect(_) => f.write_str("connect"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Cut(_) => f.write_str("body cut off"),
            Failure::Status { status, code, .. } => write!(f, "HTTP {status} {code:?}"),
            Failure::Decode(_) => f.write_str("invalid body"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn endpoints_keep_the_servers_path_prefix() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            endpoint(&u("http://127.0.0.1:9"), "v1/sync").as_str(),
            "http://127.0.0.1:9/v1/sync"
        );
        assert_eq!(
            endpoint(&u("https://h/api"), "v1/sync").as_str(),
            "https://h/api/v1/sync"
        );
        assert_eq!(
            endpoint(&u("https://h/api/"), "v1/sync").as_str(),
            "https://h/api/v1/sync"
        );
    }

    #[test]
    fn the_offset_is_measured_from_the_midpoint_of_the_exchange() {
        let a = Answer {
            body: (),
            sent: datetime!(2026-01-01 00:00:00 UTC),
            received: datetime!(2026-01-01 00:00:02 UTC),
        };
        let s = a.offset(datetime!(2026-01-01 00:01:01 UTC));
        assert_eq!(s.offset_ms, 60_000);
        assert_eq!(s.round_trip, time::Duration::seconds(2));
        let tighter = OffsetSample {
            offset_ms: 1,
            round_trip: time::Duration::milliseconds(10),
        };
        assert_eq!(OffsetSample::best(Some(s), tighter), tighter);
        assert_eq!(OffsetSample::best(Some(tighter), s), tighter);
    }
}
