use crate::common::*;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opkey_protocol::api::{ErrorCode, InviteStatus, InviteSummary, OperatorView};
use opkey_server::{HttpSmsConfig, SmsConfig};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// A fake SMS provider: records requests and answers with a settable status.
#[derive(Clone, Default)]
pub(crate) struct Provider {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    status: Arc<AtomicU16>,
}

impl Provider {
    pub(crate) async fn start() -> (Self, url::Url) {
        let provider = Provider::default();
        provider.status.store(200, Ordering::SeqCst);
        let state = provider.clone();
        let app = Router::new().route(
            "/send",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.received.lock().unwrap().push((headers, body));
                    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/send", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (provider, url)
    }

    pub(crate) fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.received.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_http_gateway_posts_the_rendered_json_with_the_credentials_header() {
    let (provider, url) = Provider::start().await;
    let server = start_with(|c| {
        let mut http = HttpSmsConfig::new(url);
        http.auth_header = Some(("Authorization".into(), "Bearer provider-secret".into()));
        c.sms = SmsConfig::Http(http);
    })
    .await;
    let view = server
        .create_operator("Ann \"The Digger\"", "+4512345678", true)
        .await;
    assert!(view.invite.unwrap().sms_id.is_some());

    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(headers["authorization"], "Bearer provider-secret");
    assert_eq!(headers["content-type"], "application/json");
    let sent: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["to"], "+4512345678");
    let text = sent["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hi Ann \"The Digger\", Acme Rental has invited you"),
        "{text}"
    );
    assert!(text.contains("/i/") && text.contains("enter code"), "{text}");

    let message = server.get("/sms").await.error(404, ErrorCode::NotFound);
    assert_eq!(message, "the SMS outbox is only kept by the dev gateway");
    server.stop().await;
}

#[tokio::test]
async fn a_form_encoded_provider_gets_url_encoded_values() {
    let (provider, url) = Provider::start().await;
    let server = start_with(|c| {
        let mut http = HttpSmsConfig::new(url);
        http.content_type = "application/x-www-form-urlencoded".into();
        http.body_template = "To={to}&Body={body}".into();
        c.sms = SmsConfig::Http(http);
    })
    .await;
    server.create_operator("Ann & Bob", "+4512345678", true).await;
    let (_, body) = &provider.requests()[0];
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(fields[0], ("To".to_owned(), "+4512345678".to_owned()));
    assert_eq!(fields[1].0, "Body");
    assert!(fields[1].1.starts_with("Hi Ann & Bob, "), "{}", fields[1].1);
    server.stop().await;
}

#[tokio::test]
async fn a_failing_provider_answers_sms_failed_but_keeps_the_operator_for_a_re_send() {
    let (provider, url) = Provider::start().await;
    let server = start_with(|c| c.sms = SmsConfig::Http(HttpSmsConfig::new(url))).await;
    provider.status.store(500, Ordering::SeqCst);
    let message = server
        .post(
            "/operators",
            json!({"name": "Ann", "phone": "+4512345678", "send_invite": true}),
        )
        .await
        .error(502, ErrorCode::SmsFailed);
    assert!(message.contains("HTTP 500"), "{message}");
    let operators: Vec<OperatorView> = server.get("/operators").await.expect(200);
    assert_eq!(operators.len(), 1);
    let op = &operators[0];
    assert!(
        message.contains(&format!("POST /admin/v1/operators/{}/invite", op.operator.id)),
        "{message}"
    );
    let invite = op.invite.as_ref().unwrap();
    assert_eq!(
        (invite.status, invite.sms_id.as_deref()),
        (InviteStatus::Pending, None)
    );

    provider.status.store(202, Ordering::SeqCst);
    let resent: InviteSummary = server
        .post(&format!("/operators/{}/invite", op.operator.id), json!({}))
        .await
        .expect(201);
    assert!(resent.sms_id.is_some());
    assert_eq!(provider.requests().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_provider_answers_sms_failed() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/send").parse().unwrap();
    let server = start_with(|c| c.sms = SmsConfig::Http(HttpSmsConfig::new(url))).await;
    let op = server.create_operator("Ann", "+4512345678", false).await;
    let message = server
        .admin(
            Method::POST,
            &format!("/operators/{}/invite", op.operator.id),
            None,
        )
        .await
        .error(502, ErrorCode::SmsFailed);
    assert!(message.contains("could not be reached"), "{message}");
    server.stop().await;
}
