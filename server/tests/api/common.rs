//! A server on 127.0.0.1:0 with a manual clock and a fresh database, an HTTP client, and
//! phones with software P-256 keys.

use opkey_protocol::api::MACHINE_SIGNATURE_HEADER;
use opkey_protocol::api::{ErrorCode, OperatorView, RedeemRequest};
use opkey_protocol::clock::ManualClock;
use opkey_protocol::encoding::b64;
use opkey_protocol::invite::ShortCode;
use opkey_server::{RunningServer, ServerConfig};
use reqwest::{Method, StatusCode};
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::macros::datetime;

pub const ADMIN_TOKEN: &str = "test-bootstrap-admin-token";
pub const START: OffsetDateTime = datetime!(2026-01-05 09:00 UTC);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub _dir: tempfile::TempDir,
}

/// An HTTP answer: status and JSON body (or `Value::String` for a non-JSON body).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("unexpected body ({e}): {} {}", self.status, self.body))
    }

    /// Asserts the status and returns the typed body.
    pub fn expect<T: DeserializeOwned>(&self, status: u16) -> T {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self.json()
    }

    /// Asserts an error status and code; returns the message.
    pub fn error(&self, status: u16, code: ErrorCode) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        let got: ErrorCode = serde_json::from_value(self.body["error"]["code"].clone())
            .unwrap_or_else(|_| panic!("not an error body: {}", self.body));
        assert_eq!(got, code, "body: {}", self.body);
        self.body["error"]["message"].as_str().unwrap().to_owned()
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// The configuration every test server starts from: a database in `dir`, this clock.
pub fn test_config(dir: &std::path::Path, clock: Arc<ManualClock>) -> ServerConfig {
    let mut config = ServerConfig::new(dir.join("opkey.db"), ADMIN_TOKEN);
    config.clock = clock;
    config.default_organization_name = "Acme Rental".to_owned();
    config
}

pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let mut config = test_config(dir.path(), clock.clone());
    configure(&mut config);
    let server = opkey_server::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    TestServer {
        server: Some(server),
        client: reqwest::Client::new(),
        clock,
        _dir: dir,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        let base = self.server.as_ref().unwrap().url().as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    }

    /// A request with a bearer token (or none) and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// A bootstrap-admin request under `/admin/v1`.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, &format!("/admin/v1{path}"), Some(ADMIN_TOKEN), body)
            .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.admin(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.admin(Method::POST, path, Some(body)).await
    }

    pub async fn create_operator(&self, name: &str, phone: &str, invite: bool) -> OperatorView {
        self.post(
            "/operators",
            json!({"name": name, "phone": phone, "send_invite": invite}),
        )
        .await
        .expect(201)
    }

    pub async fn create_machine(&self, name: &str) -> String {
        let machine: Value = self
            .post("/machines", json!({"name": name, "keypad": "dual-id"}))
            .await
            .expect(201);
        machine["id"].as_str().unwrap().to_owned()
    }

    /// The newest SMS in the dev outbox.
    pub async fn last_sms(&self) -> opkey_protocol::api::SmsMessage {
        let all: Vec<opkey_protocol::api::SmsMessage> = self.get("/sms").await.expect(200);
        all.last().expect("an SMS was sent").clone()
    }

    /// A machine with a registered BLE public key; returns its id.
    pub async fn create_ble_machine(&self, name: &str) -> String {
        let machine: Value = self
            .post(
                "/machines",
                json!({"name": name, "ble_public_key": MachineKey::new().public_key}),
            )
            .await
            .expect(201);
        machine["id"].as_str().unwrap().to_owned()
    }

    /// Stops the server and starts it again on the same database and clock.
    pub async fn restart(mut self) -> TestServer {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let TestServer {
            client, clock, _dir, ..
        } = self;
        let server = opkey_server::start(
            test_config(_dir.path(), clock.clone()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        TestServer {
            server: Some(server),
            client,
            clock,
            _dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// The token of the invite link and the code in an invitation SMS.
pub fn invite_secrets(sms_body: &str) -> (String, String) {
    let after_link = &sms_body[sms_body.find("/i/").expect("a link") + 3..];
    let token = after_link.split_whitespace().next().unwrap().to_owned();
    let after_code = &sms_body[sms_body.find("enter code ").expect("a code") + 11..];
    let code = after_code.split_whitespace().next().unwrap().to_owned();
    (token, code)
}

/// A machine's BLE key pair (only the public half matters to the backend).
pub struct MachineKey {
    pub public_key: String,
}

impl MachineKey {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        Self {
            public_key: b64(pair.public_key().as_ref()),
        }
    }
}

/// A telematics unit online: its machine key (raw `r ‖ s` signatures, as units sign) and
/// its registered id.
pub struct SigningUnit {
    key: EcdsaKeyPair,
    pub id: String,
}

impl SigningUnit {
    /// Registers a machine named `name` (plus `fields`, such as its keypad) with a fresh key.
    pub async fn register(server: &TestServer, name: &str, fields: Value) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let mut body = json!({"name": name, "ble_public_key": b64(key.public_key().as_ref())});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let machine: Value = server.post("/machines", body).await.expect(201);
        Self {
            key,
            id: machine["id"].as_str().unwrap().to_owned(),
        }
    }

    /// 16 fresh random bytes, base64url: a request nonce.
    pub fn nonce() -> String {
        let mut nonce = [0u8; 16];
        SystemRandom::new().fill(&mut nonce).unwrap();
        b64(&nonce)
    }

    /// The unit's signature of `message`, base64url.
    pub fn sign(&self, message: &[u8]) -> String {
        b64(self.key.sign(&SystemRandom::new(), message).unwrap().as_ref())
    }
}

/// POSTs a machine's request `body` to `path` with its signature header.
pub async fn machine_post(server: &TestServer, path: &str, body: Vec<u8>, signature: &str) -> Answer {
    server
        .send(
            server
                .client
                .post(server.url(path))
                .header("content-type", "application/json")
                .header(MACHINE_SIGNATURE_HEADER, signature)
                .body(body),
        )
        .await
}

/// A phone with a software P-256 key.
pub struct Phone {
    pair: EcdsaKeyPair,
    pub public_key: String,
}

impl Phone {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let public_key = b64(pair.public_key().as_ref());
        Self { pair, public_key }
    }

    pub fn sign(&self, message: &[u8]) -> String {
        b64(self.pair.sign(&SystemRandom::new(), message).unwrap().as_ref())
    }

    pub fn redeem_with_token(&self, token: &str) -> RedeemRequest {
        RedeemRequest {
            token: Some(token.to_owned()),
            code: None,
            phone_public_key: self.public_key.clone(),
            signature: self.sign(&opkey_protocol::auth::redeem_message(token, &self.public_key)),
            device_name: "Pixel 8".to_owned(),
        }
    }

    /// Redeems with the code as a person types it; signs the normalised code.
    pub fn redeem_with_code(&self, typed: &str) -> RedeemRequest {
        let normalised = ShortCode::parse(typed).unwrap();
        RedeemRequest {
            token: None,
            code: Some(typed.to_owned()),
            phone_public_key: self.public_key.clone(),
            signature: self.sign(&opkey_protocol::auth::redeem_message(
                normalised.expose(),
                &self.public_key,
            )),
            device_name: "iPhone".to_owned(),
        }
    }

    /// Redeems, opens a session and returns (phone id, access token).
    pub async fn enroll(&self, server: &TestServer, token: &str) -> (String, String) {
        let redeemed: opkey_protocol::api::RedeemResponse = server
            .call(
                Method::POST,
                "/v1/invites/redeem",
                None,
                Some(serde_json::to_value(self.redeem_with_token(token)).unwrap()),
            )
            .await
            .expect(200);
        let access = self.open_session(server, &redeemed.phone_id).await;
        (redeemed.phone_id, access)
    }

    pub async fn open_session(&self, server: &TestServer, phone_id: &str) -> String {
        let challenge: opkey_protocol::api::ChallengeResponse = server
            .call(
                Method::POST,
                "/v1/session/challenge",
                None,
                Some(json!({"phone_id": phone_id})),
            )
            .await
            .expect(200);
        let signature = self.sign(&opkey_protocol::auth::session_message(
            phone_id,
            &challenge.challenge,
        ));
        let session: opkey_protocol::api::SessionResponse = server
            .call(
                Method::POST,
                "/v1/session",
                None,
                Some(json!({"phone_id": phone_id, "challenge": challenge.challenge, "signature": signature})),
            )
            .await
            .expect(200);
        session.access_token
    }
}

/// An operator with an enrolled phone: (operator id, phone, phone id, access token).
pub async fn enrolled_operator(
    server: &TestServer,
    name: &str,
    phone_number: &str,
) -> (String, Phone, String, String) {
    let op = server.create_operator(name, phone_number, true).await;
    let (token, _) = invite_secrets(&server.last_sms().await.body);
    let phone = Phone::new();
    let (phone_id, access) = phone.enroll(server, &token).await;
    (op.operator.id, phone, phone_id, access)
}

pub async fn sync(server: &TestServer, access: &str, cursor: u64, limit: Option<u32>) -> Answer {
    let path = match limit {
        Some(limit) => format!("/v1/sync?cursor={cursor}&limit={limit}"),
        None => format!("/v1/sync?cursor={cursor}"),
    };
    server.call(Method::GET, &path, Some(access), None).await
}
