//! Stand-ins for the services around the backend in end-to-end tests: a fake SMS
//! provider ([`FakeSmsProvider`]), and `AbortOnDrop`, which stops a loopback server
//! (this provider, the fault proxy in [`crate::fault_proxy`]) when its last handle goes.
//! The network between a phone and the backend is spoiled by
//! [`crate::fault_proxy::NetFaultProxy`].

use axum::Router;
use axum::body::Bytes;
use std::sync::{Arc, Mutex};
use url::Url;

/// Aborts a loopback server's accept loop when the last handle to it goes.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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
