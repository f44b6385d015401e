//! The unit online fetches its keypad table: a signed `POST machine/v1/keypad` to a small
//! fake backend that answers 200 with a table or 204 when the one held is the latest.

use crate::keypad::table;
use crate::support::*;
use opkey_machine::refresh::{KeypadRefresher, Refreshed};
use opkey_machine::report::ReportError;
use opkey_machine::{MachineError, TableUpdate};
use opkey_protocol::SystemClock;
use opkey_protocol::api::{MACHINE_SIGNATURE_HEADER, MachineKeypadRequest, machine_keypad_message};
use opkey_protocol::encoding::unb64;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use url::Url;

/// One request as the fake backend saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    signature: Option<String>,
    body: Vec<u8>,
}

/// Answers each request with the next canned (status, body); records what it got.
struct FakeBackend {
    url: Url,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeBackend {
    async fn start(answers: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/base", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rx, mut tx) = stream.into_split();
                let mut rx = BufReader::new(rx);
                let mut request_line = String::new();
                rx.read_line(&mut request_line).await.unwrap();
                let (mut length, mut signature) = (0usize, None);
                loop {
                    let mut header = String::new();
                    rx.read_line(&mut header).await.unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                    if name == "content-length" {
                        length = value.parse().unwrap();
                    } else if name == MACHINE_SIGNATURE_HEADER {
                        signature = Some(value);
                    }
                }
                let mut body = vec![0; length];
                rx.read_exact(&mut body).await.unwrap();
                record.lock().unwrap().push(Seen {
                    request_line: request_line.trim_end().to_owned(),
                    signature,
                    body,
                });
                let (status, body) = answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((500, String::new()));
                let reason = match status {
                    200 => "OK",
                    204 => "No Content",
                    _ => "Error",
                };
                let response = if status == 204 {
                    "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned()
                } else {
                    format!(
                        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                tx.write_all(response.as_bytes()).await.unwrap();
                tx.shutdown().await.unwrap();
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unit_fetches_a_newer_table_signed_and_keeps_it_and_204_changes_nothing() {
    let mut site = Site::new();
    site.keypad = Some(table(1));
    let machine = Arc::new(Mutex::new(site.start()));
    let older = serde_json::to_string(&table(1)).unwrap();
    let newer = serde_json::to_string(&table(2)).unwrap();
    let mut bad = table(5);
    bad.rolling_pins[0].seed = "%%%".into();
    let bad = serde_json::to_string(&bad).unwrap();
    let backend = FakeBackend::start(vec![
        (200, newer),
        (204, String::new()),
        (200, older),
        (200, bad),
        (200, "{\"not\":\"a table\"}".into()),
        (
            403,
            "{\"error\":{\"code\":\"forbidden\",\"message\":\"unknown machine\"}}".into(),
        ),
    ])
    .await;
    let refresher = KeypadRefresher::new(
        machine.clone(),
        &site.machine_key(),
        &backend.url,
        Arc::new(SystemClock),
    )
    .unwrap();

    assert_eq!(
        refresher.refresh().await.unwrap(),
        Refreshed::Table(TableUpdate::Replaced { version: 2 })
    );
    assert_eq!(machine.lock().unwrap().keypad_table_version(), 2);
    assert_eq!(
        site.store.saved().unwrap().keypad.table.unwrap().version,
        2,
        "saved"
    );
    assert_eq!(
        refresher.refresh().await.unwrap(),
        Refreshed::Unchanged { version: 2 }
    );
    assert_eq!(
        refresher.refresh().await.unwrap(),
        Refreshed::Table(TableUpdate::Ignored { offered: 1, held: 2 }),
        "a table never rolls back"
    );
    let refused = refresher.refresh().await.unwrap_err();
    assert!(
        matches!(refused, ReportError::Machine(MachineError::KeypadTable(_))),
        "{refused:?}"
    );
    let garbage = refresher.refresh().await.unwrap_err();
    assert!(matches!(garbage, ReportError::BadAnswer(_)), "{garbage:?}");
    let forbidden = refresher.refresh().await.unwrap_err();
    assert!(
        matches!(&forbidden, ReportError::Refused { status: 403, message } if message == "unknown machine"),
        "{forbidden:?}"
    );
    assert_eq!(machine.lock().unwrap().keypad_table_version(), 2);

    // Every request: the right path, a fresh nonce, the version held, the machine's
    // signature over the exact body.
    let seen = backend.seen();
    assert_eq!(seen.len(), 6);
    let public_key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, site.machine.public_key().to_vec());
    let mut nonces = Vec::new();
    let mut versions = Vec::new();
    for request in &seen {
        assert_eq!(request.request_line, "POST /base/machine/v1/keypad HTTP/1.1");
        let signature = unb64(request.signature.as_deref().expect("signed")).unwrap();
        assert_eq!(signature.len(), 64, "raw r ‖ s");
        public_key
            .verify(&machine_keypad_message(&request.body), &signature)
            .expect("the machine's signature over the body");
        let body: MachineKeypadRequest = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body.machine_id, MACHINE);
        assert_eq!(unb64(&body.nonce).unwrap().len(), 16);
        nonces.push(body.nonce);
        versions.push(body.known_version);
    }
    assert_eq!(versions, [1, 2, 2, 2, 2, 2]);
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 6, "never the same nonce twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_needs_the_machines_own_key() {
    let site = Site::new();
    let machine = Arc::new(Mutex::new(site.start()));
    let other = Site::new();
    let url = Url::parse("http://127.0.0.1:9/").unwrap();
    let error = KeypadRefresher::new(machine, &other.machine_key(), &url, Arc::new(SystemClock)).unwrap_err();
    assert!(matches!(error, ReportError::KeyMismatch), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_with_a_server_refreshes_its_table_periodically() {
    use std::io::{BufRead, BufReader};

    let mut site = Site::new();
    site.keypad = Some(table(1));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("machine.key");
    site.write_machine_key(&key_file);
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, serde_json::to_vec(&site.provisioning()).unwrap()).unwrap();
    let backend = FakeBackend::start(vec![
        (200, serde_json::to_string(&table(2)).unwrap()),
        (204, String::new()),
        (204, String::new()),
        (204, String::new()),
    ])
    .await;

    let mut child = run_command(
        &bundle,
        &key_file,
        &dir.path().join("state.json"),
        &["--server", backend.url.as_str(), "--keypad-refresh-every", "1"],
    )
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(2)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(lines[0].starts_with("listening on "), "{lines:?}");
    assert_eq!(lines[1], "keypad table version=2");
    // A second refresh a second later asks with the version now held.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while backend.seen().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let versions: Vec<u64> = backend
        .seen()
        .iter()
        .map(|r| {
            serde_json::from_slice::<MachineKeypadRequest>(&r.body)
                .unwrap()
                .known_version
        })
        .collect();
    assert!(versions.len() >= 2 && versions[..2] == [1, 2], "{versions:?}");
}
