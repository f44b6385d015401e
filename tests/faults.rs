//! A fault-injecting HTTP proxy on loopback: it stands between a phone and the backend
//! and, for the requests it is told to spoil, answers 500, never answers, or cuts the
//! body half-way. Everything else passes through untouched.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::{Arc, Mutex};
use url::Url;

/// What the proxy does to matching requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass through.
    None,
    /// Answer 500 with an error body.
    ServerError,
    /// Accept and never answer (the client's timeout fires).
    Hang,
    /// Forward, then send the headers and only half of the body, then close.
    CutBody,
    /// Forward, then replace the body with bytes that are not JSON.
    Garbage,
}

#[derive(Debug)]
struct Inner {
    fault: Fault,
    /// Only requests whose path starts with this are spoiled.
    path_prefix: String,
    /// How many more matching requests to spoil (`None`: all).
    remaining: Option<u32>,
    spoiled: u32,
}

/// A running proxy. Drop it to stop it.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    pub url: Url,
    inner: Arc<Mutex<Inner>>,
    _task: Arc<AbortOnDrop>,
}

/// Aborts a proxy's accept loop when the last handle to it goes.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: Url,
    http: reqwest::Client,
    inner: Arc<Mutex<Inner>>,
}

impl FaultProxy {
    pub async fn start(upstream: &Url) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            fault: Fault::None,
            path_prefix: String::new(),
            remaining: None,
            spoiled: 0,
        }));
        let state = ProxyState {
            upstream: upstream.clone(),
            http: reqwest::Client::new(),
            inner: inner.clone(),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = Url::parse(&format!("http://{addr}/")).expect("proxy URL");
        Self {
            url,
            inner,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Spoil requests under `path_prefix` with `fault`, `times` times (`None`: always).
    pub fn set(&self, fault: Fault, path_prefix: &str, times: Option<u32>) {
        let mut inner = self.inner.lock().expect("proxy state");
        inner.fault = fault;
        inner.path_prefix = path_prefix.to_owned();
        inner.remaining = times;
    }

    pub fn clear(&self) {
        self.set(Fault::None, "", None);
    }

    /// How many requests were spoiled so far.
    pub fn spoiled(&self) -> u32 {
        self.inner.lock().expect("proxy state").spoiled
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fault = {
        let mut inner = state.inner.lock().expect("proxy state");
        let matches = inner.fault != Fault::None && path_and_query.starts_with(&inner.path_prefix);
        let left = inner.remaining.is_none_or(|n| n > 0);
        if matches && left {
            inner.remaining = inner.remaining.map(|n| n - 1);
            inner.spoiled += 1;
            inner.fault
        } else {
            Fault::None
        }
    };
    match fault {
        Fault::ServerError => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    r#"{"error":{"code":"internal","message":"injected fault"}}"#,
                ))
                .expect("response");
        }
        Fault::Hang => {
            std::future::pending::<()>().await;
            unreachable!("a pending future never completes");
        }
        _ => {}
    }

    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let url = state
        .upstream
        .join(path_and_query.trim_start_matches('/'))
        .expect("upstream URL");
    let mut upstream = state.http.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::empty())
                .expect("response");
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();

    let mut builder = Response::builder().status(status);
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            builder = builder.header(name, value);
        }
    }
    match fault {
        Fault::CutBody => {
            // Promise the whole length, deliver half, then fail the stream: the client
            // sees a connection closed mid-body.
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("injected cut"))];
            builder
                .header(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()))
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .expect("response")
        }
        Fault::Garbage => builder
            .body(Body::from("{\"cursor\": 7, \"keys\": [{\"id\": "))
            .expect("response"),
        _ => builder.body(Body::from(bytes)).expect("response"),
    }
}

/// A stand-in for a real SMS provider: it accepts the backend's default JSON body
/// (`{"to": …, "text": …}`) and keeps what it received in memory only.
#[derive(Debug, Clone)]
pub struct FakeSmsProvider {
    pub url: Url,
    received: Arc<Mutex<Vec<(String, String)>>>,
    _task: Arc<AbortOnDrop>,
}

impl FakeSmsProvider {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let sink = received.clone();
        let app = Router::new().fallback(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let to = value["to"].as_str().unwrap_or_default().to_owned();
                let text = value["text"].as_str().unwrap_or_default().to_owned();
                sink.lock().expect("provider state").push((to, text));
                "queued"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("provider binds");
        let addr = listener.local_addr().expect("provider address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = Url::parse(&format!("http://{addr}/messages")).expect("provider URL");
        Self {
            url,
            received,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// The text of the last message sent to `to` (E.164).
    pub fn last_text_to(&self, to: &str) -> Option<String> {
        let received = self.received.lock().expect("provider state");
        received
            .iter()
            .rev()
            .find(|(t, _)| t == to)
            .map(|(_, text)| text.clone())
    }
}
