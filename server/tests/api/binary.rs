use opkey_protocol::api::AdminIdentity;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_opkey-server");

fn assert_lists_the_main_paths(doc: &serde_json::Value) {
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/admin/v1/whoami",
        "/admin/v1/operators",
        "/admin/v1/operators/{id}/invite",
        "/admin/v1/operators/import/preview",
        "/admin/v1/operators/import",
        "/admin/v1/machines",
        "/admin/v1/machines/{id}",
        "/admin/v1/machines/{id}/provisioning",
        "/admin/v1/events",
        "/admin/v1/keys",
        "/admin/v1/keys/{id}/revoke",
        "/v1/invites/redeem",
        "/v1/session/challenge",
        "/v1/session",
        "/v1/sync",
        "/v1/events",
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
        "/i/{token}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
    assert!(doc["components"]["schemas"]["OperatorView"].is_object());
    assert!(doc["components"]["schemas"]["ErrorCode"].is_object());
    for schema in [
        "GrantRecord",
        "RevocationRecord",
        "MachineProvisioning",
        "EditMachine",
        "UsageEventsUpload",
        "UsageEventsReceipt",
        "UsageEventView",
        "AssetLinkStatement",
        "AppleAppSiteAssociation",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_and_printed() {
    let server = crate::common::start().await;
    let answer = server
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(answer.status.as_u16(), 200);
    assert_lists_the_main_paths(&answer.body);
    server.stop().await;

    let output = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(output.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_lists_the_main_paths(&printed);
    assert_eq!(
        printed,
        serde_json::from_str::<serde_json::Value>(&opkey_server::openapi_json()).unwrap()
    );
}

#[tokio::test]
async fn the_binary_prints_its_address_first_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("server.db"))
        .env("OPKEY_ADMIN_TOKEN", "binary-test-token")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim_end()
        .strip_prefix("listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));
    assert!(!base.ends_with(":0"), "the real port is printed: {base}");

    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let me: AdminIdentity = client
        .get(format!("{base}/admin/v1/whoami"))
        .bearer_auth("binary-test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me.name, "bootstrap admin");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status}");
}
