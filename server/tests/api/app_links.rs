//! Invite links outside the app: the `/.well-known` files that let the Android and iOS
//! apps open them (from configuration), and the landing page `/i/{token}` shows in a
//! browser for pending, expired, used, withdrawn, unknown and malformed invites.

use crate::common::{Answer, Phone, TestServer, invite_secrets, start, start_with};
use opkey_protocol::api::{ErrorCode, InviteStatus, OperatorView};
use opkey_protocol::invite::{InviteToken, ShortCode};
use opkey_server::{AndroidApp, AppLinks, HttpSmsConfig, SmsConfig};
use reqwest::Method;
use ring::rand::SystemRandom;
use serde_json::{Value, json};
use time::Duration;
use url::Url;

const FP_LOWER: &str =
    "14:6d:e9:83:c5:73:06:50:d8:ee:b9:95:2f:34:fc:64:16:a0:83:42:e6:1d:be:a8:8a:04:96:b2:3f:cf:44:e5";
const FP_UPPER: &str =
    "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";
const FP_OTHER: &str =
    "FA:C6:17:45:DC:09:03:78:6F:B9:ED:E6:2A:96:2B:39:9F:73:48:F0:BB:6F:89:9B:83:32:66:75:91:03:3B:9C";

/// Failed redeems from one address before it gets 429 (docs/API.md, Operator API).
const REDEEM_FAILURE_LIMIT: usize = 10;

fn app_links() -> AppLinks {
    AppLinks {
        android: vec![
            AndroidApp {
                package_name: "com.example.opkey".into(),
                sha256_cert_fingerprints: vec![FP_LOWER.into(), FP_OTHER.into()],
            },
            AndroidApp {
                package_name: "com.example.opkey.beta".into(),
                sha256_cert_fingerprints: vec![FP_UPPER.into()],
            },
        ],
        apple_app_ids: vec![
            "ABCDE12345.com.example.opkey".into(),
            "ABCDE12345.com.example.opkey.beta".into(),
        ],
    }
}

async fn fetch(server: &TestServer, path: &str) -> Answer {
    server.call(Method::GET, path, None, None).await
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn html(answer: &Answer) -> &str {
    answer.body.as_str().expect("an HTML page, not JSON")
}

#[tokio::test]
async fn the_well_known_files_are_served_from_the_configuration_without_auth() {
    let server = start_with(|c| {
        c.app_links = app_links();
        c.invite_base_url = Some(Url::parse("https://keys.example/").unwrap());
    })
    .await;

    let android = fetch(&server, "/.well-known/assetlinks.json").await;
    assert_eq!(android.status.as_u16(), 200);
    assert_eq!(
        android.body,
        json!([
            {
                "relation": ["delegate_permission/common.handle_all_urls"],
                "target": {
                    "namespace": "android_app",
                    "package_name": "com.example.opkey",
                    "sha256_cert_fingerprints": [FP_UPPER, FP_OTHER]
                }
            },
            {
                "relation": ["delegate_permission/common.handle_all_urls"],
                "target": {
                    "namespace": "android_app",
                    "package_name": "com.example.opkey.beta",
                    "sha256_cert_fingerprints": [FP_UPPER]
                }
            }
        ])
    );

    let apple = fetch(&server, "/.well-known/apple-app-site-association").await;
    assert_eq!(apple.status.as_u16(), 200);
    assert_eq!(
        apple.body,
        json!({
            "applinks": {
                "details": [{
                    "appIDs": ["ABCDE12345.com.example.opkey", "ABCDE12345.com.example.opkey.beta"],
                    "components": [{"/": "/i/*", "comment": "OpKey invite links"}]
                }]
            }
        })
    );
    for answer in [&android, &apple] {
        assert_eq!(header(answer, "content-type"), "application/json");
        assert_eq!(header(answer, "cache-control"), "public, max-age=3600");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_platform_without_a_configured_app_gets_a_json_404() {
    let server = start().await;
    for path in [
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
    ] {
        let message = fetch(&server, path).await.error(404, ErrorCode::NotFound);
        assert!(message.contains("is configured for invite links"), "{message}");
    }
    server.stop().await;

    let only_apple = start_with(|c| {
        c.app_links.apple_app_ids = vec!["ABCDE12345.com.example.opkey".into()];
    })
    .await;
    let message = fetch(&only_apple, "/.well-known/assetlinks.json")
        .await
        .error(404, ErrorCode::NotFound);
    assert!(message.contains("--android-app"), "{message}");
    assert_eq!(
        fetch(&only_apple, "/.well-known/apple-app-site-association")
            .await
            .status
            .as_u16(),
        200
    );
    only_apple.stop().await;
}

#[tokio::test]
async fn a_server_with_malformed_app_links_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(opkey_protocol::clock::ManualClock::new(crate::common::START));
    let mut config = crate::common::test_config(dir.path(), clock);
    config.app_links.android = vec![AndroidApp {
        package_name: "com.example.opkey".into(),
        sha256_cert_fingerprints: vec!["14:6D:E9".into()],
    }];
    let error = opkey_server::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a SHA-256 certificate fingerprint"), "{error}");
}

/// A server whose default organization's name needs escaping, with one invited operator:
/// (server, operator id, token, code as the SMS shows it).
async fn invited() -> (TestServer, String, String, String) {
    let server = start_with(|c| c.default_organization_name = "<b>&\" Rental".to_owned()).await;
    let op = server.create_operator("Ann Example", "+4512345678", true).await;
    let (token, code) = invite_secrets(&server.last_sms().await.body);
    (server, op.operator.id, token, code)
}

async fn invite_status(server: &TestServer, operator_id: &str) -> InviteStatus {
    let view: OperatorView = server.get(&format!("/operators/{operator_id}")).await.expect(200);
    view.invite.expect("an invite").status
}

fn assert_landing_headers(answer: &Answer) {
    assert_eq!(header(answer, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header(answer, "content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(header(answer, "referrer-policy"), "no-referrer");
    assert_eq!(header(answer, "cache-control"), "no-store");
    assert_eq!(header(answer, "x-robots-tag"), "noindex");
    let page = html(answer);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for outside in ["<script", "src=", "<link", "http://", "https://"] {
        assert!(!page.contains(outside), "{outside} in {page}");
    }
}

#[tokio::test]
async fn a_pending_invite_shows_the_app_link_the_code_and_the_expiry_without_redeeming() {
    let (server, op_id, token, code) = invited().await;
    let page = fetch(&server, &format!("/i/{token}")).await;
    assert_eq!(page.status.as_u16(), 200);
    assert_landing_headers(&page);
    let body = html(&page);
    assert!(
        body.contains(&format!(
            "<a class=\"button\" href=\"opkey://invite/{token}\">Open in OpKey</a>"
        )),
        "{body}"
    );
    assert_eq!(code.len(), 13, "the SMS shows ABCD-EFGH-JKM");
    assert!(
        body.contains(&format!(
            "<p>Or open OpKey and type this code:</p>\n<p class=\"code\">{code}</p>"
        )),
        "{body}"
    );
    assert!(
        body.contains("Hi Ann, &lt;b&gt;&amp;&quot; Rental has invited you"),
        "{body}"
    );
    assert!(!body.contains("<b>"), "{body}");
    assert!(body.contains("Install OpKey from your app store"), "{body}");
    assert!(body.contains("expires 2026-01-12 09:00 UTC"), "{body}");

    // Looking, even twice, neither redeems nor spends the invite.
    fetch(&server, &format!("/i/{token}")).await;
    assert_eq!(invite_status(&server, &op_id).await, InviteStatus::Pending);
    let phone = Phone::new();
    server
        .call(
            Method::POST,
            "/v1/invites/redeem",
            None,
            Some(serde_json::to_value(phone.redeem_with_code(&code)).unwrap()),
        )
        .await
        .expect::<Value>(200);

    let used = fetch(&server, &format!("/i/{token}")).await;
    assert_eq!(used.status.as_u16(), 410);
    assert_landing_headers(&used);
    assert!(html(&used).contains("This invite has already been used"));
    assert!(html(&used).contains("ask your fleet admin to send you a new invite"));
    assert!(!html(&used).contains(&code), "a used invite's page shows no code");
    server.stop().await;
}

#[tokio::test]
async fn withdrawn_and_expired_invites_answer_410_with_what_happened() {
    let (server, op_id, old_token, old_code) = invited().await;
    server
        .post(&format!("/operators/{op_id}/invite"), json!({}))
        .await
        .expect::<Value>(201);
    let (new_token, _) = invite_secrets(&server.last_sms().await.body);

    let withdrawn = fetch(&server, &format!("/i/{old_token}")).await;
    assert_eq!(withdrawn.status.as_u16(), 410);
    assert_landing_headers(&withdrawn);
    assert!(html(&withdrawn).contains("This invite is no longer valid"));
    assert!(html(&withdrawn).contains("newest OpKey text message"));
    assert!(!html(&withdrawn).contains(&old_code));
    assert!(!html(&withdrawn).contains("opkey://"));

    assert_eq!(
        fetch(&server, &format!("/i/{new_token}")).await.status.as_u16(),
        200
    );
    server.clock.advance(Duration::days(7));
    let expired = fetch(&server, &format!("/i/{new_token}")).await;
    assert_eq!(expired.status.as_u16(), 410);
    assert_landing_headers(&expired);
    assert!(html(&expired).contains("This invite has expired"));
    assert!(html(&expired).contains("Ask your fleet admin to send you a new invite."));
    assert!(!html(&expired).contains("opkey://"));
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_links_get_the_same_404_page() {
    let (server, _, token, _) = invited().await;
    let unknown = InviteToken::generate(&SystemRandom::new()).unwrap();
    let first = fetch(&server, &format!("/i/{}", unknown.expose())).await;
    assert_eq!(first.status.as_u16(), 404);
    assert_landing_headers(&first);
    assert!(html(&first).contains("This invite link is not valid"));
    assert!(html(&first).contains("ask your fleet admin to send you a new invite"));

    let one_off = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('A') { 'B' } else { 'A' }
    );
    let near_miss = format!("{}!", &token[..token.len() - 1]);
    for malformed in [
        one_off.as_str(),
        near_miss.as_str(),
        &token[..token.len() - 1],
        &format!("{token}A"),
        "x",
        "%3Cscript%3E",
    ] {
        let answer = fetch(&server, &format!("/i/{malformed}")).await;
        assert_eq!(answer.status.as_u16(), 404, "{malformed}");
        assert_eq!(html(&answer), html(&first), "{malformed}");
        assert_landing_headers(&answer);
    }
    server.stop().await;
}

#[tokio::test]
async fn viewing_landing_pages_never_counts_towards_the_redeem_throttle() {
    let (server, _, token, _) = invited().await;
    for _ in 0..2 * REDEEM_FAILURE_LIMIT {
        let unknown = InviteToken::generate(&SystemRandom::new()).unwrap();
        assert_eq!(
            fetch(&server, &format!("/i/{}", unknown.expose()))
                .await
                .status
                .as_u16(),
            404
        );
    }
    // Ten failed redeems from this address would now answer 429 before looking.
    let phone = Phone::new();
    server
        .call(
            Method::POST,
            "/v1/invites/redeem",
            None,
            Some(serde_json::to_value(phone.redeem_with_token(&token)).unwrap()),
        )
        .await
        .expect::<Value>(200);
    server.stop().await;
}

/// Every file of the test server's database.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server._dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("opkey.db") && !name.ends_with(".secrets-key") && !name.ends_with(".issuer-key") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn the_database_keeps_the_short_code_sealed_never_in_clear() {
    // A real SMS provider, so no outbox in the database holds the message.
    let (provider, url) = crate::sms_http::Provider::start().await;
    let server = start_with(|c| c.sms = SmsConfig::Http(HttpSmsConfig::new(url))).await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (_, sent) = provider.requests().pop().expect("the SMS went out");
    let text: Value = serde_json::from_str(&sent).unwrap();
    let (token, code) = invite_secrets(text["text"].as_str().unwrap());
    let page = fetch(&server, &format!("/i/{token}")).await;
    assert!(
        html(&page).contains(&code),
        "the page shows the code it keeps sealed"
    );

    let bytes = database_bytes(&server);
    assert!(!bytes.is_empty());
    let normalised = ShortCode::parse(&code).unwrap();
    for clear in [normalised.expose(), code.as_str(), token.as_str()] {
        assert!(
            !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
            "found a secret in clear in the database files"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invite_without_a_readable_stored_code_asks_for_the_code_from_the_sms() {
    let (server, _, token, code) = invited().await;
    // NULL: issued before codes were kept (migration 5); bytes: sealed under another key.
    for stored in [None, Some(vec![1u8; 40])] {
        let db = rusqlite::Connection::open(server._dir.path().join("opkey.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(
            db.execute("UPDATE invites SET code_sealed = ?1", [&stored])
                .unwrap(),
            1
        );
        drop(db);

        let page = fetch(&server, &format!("/i/{token}")).await;
        assert_eq!(page.status.as_u16(), 200);
        assert_landing_headers(&page);
        let body = html(&page);
        assert!(
            body.contains("Or open OpKey and type the code from your text message."),
            "{body}"
        );
        assert!(!body.contains(&code), "{body}");
        assert!(
            body.contains(&format!("href=\"opkey://invite/{token}\"")),
            "{body}"
        );
    }
    server.stop().await;
}
