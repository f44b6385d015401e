//! The unit online: closed usage sessions reach the backend exactly once, whatever happens
//! to the answers, and what was delivered is remembered across restarts.

use crate::support::*;
use opkey_machine::report::{Delivered, ReportError, Reporter};
use opkey_machine::{FileStore, Machine, MemoryStore, SessionEnd, StateStore, StoredState, UsageSession};
use opkey_protocol::SystemClock;
use opkey_protocol::api::{CreateMachine, EventSource};
use opkey_protocol::ble::MachineState;
use opkey_protocol::encoding::b64;
use opkey_server::ServerConfig;
use opkey_server::admin_client::AdminClient;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use url::Url;
use zeroize::Zeroizing;

fn numbers(sessions: &[UsageSession]) -> Vec<u32> {
    sessions.iter().map(|s| s.usage_session).collect()
}

#[test]
fn delivered_sessions_stay_delivered_and_undelivered_ones_survive_a_restart() {
    let site = Site::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let open = || site.start_on(Box::new(FileStore::new(&state))).unwrap();

    let mut machine = open();
    site.unlock(&mut machine, site.full(), at(T0));
    site.lock(&mut machine, at(T0 + 60));
    site.unlock(&mut machine, site.cached(), at(T0 + 120));
    // The lock command took session number 2: the second unlock is session 3.
    assert_eq!(
        numbers(&machine.pending_usage()),
        [1],
        "only closed sessions are pending"
    );
    machine.acknowledge_usage(1).unwrap();
    assert!(machine.pending_usage().is_empty());
    machine.acknowledge_usage(9).unwrap();
    drop(machine); // power cut with session 3 open

    let machine = open();
    let pending = machine.pending_usage();
    assert_eq!(
        numbers(&pending),
        [3],
        "an acknowledgement never reaches past the sessions it saw"
    );
    assert_eq!(pending[0].ended_by, Some(SessionEnd::Restart));
    drop(machine); // not reported before the next power cut

    let mut machine = open();
    assert_eq!(numbers(&machine.pending_usage()), [3]);
    machine.acknowledge_usage(3).unwrap();
    machine.acknowledge_usage(1).unwrap();
    drop(machine);
    let machine = open();
    assert!(machine.pending_usage().is_empty());
    assert_eq!(machine.usage().uploaded_through(), 3);
}

/// Between the reporter and the server: passes traffic, closes connections at once (the
/// server is down), or forwards the request and drops the answer.
struct Proxy {
    url: Url,
    mode: Arc<AtomicU8>,
}

const PASS: u8 = 0;
const DOWN: u8 = 1;
const LOSE_ANSWER: u8 = 2;

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let current = mode.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mode = current.load(Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if mode == DOWN {
                        return;
                    }
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    if mode == PASS {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                    let (mut client_rx, _client_tx) = client.split();
                    let (mut server_rx, mut server_tx) = server.split();
                    let forward = tokio::io::copy(&mut client_rx, &mut server_tx);
                    let mut first = [0u8; 1];
                    tokio::select! {
                        _ = forward => {}
                        // The server answered, so it has stored the upload: drop the answer.
                        _ = server_rx.read(&mut first) => {}
                    }
                });
            }
        });
        Self { url, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

fn session(n: u32, end: Option<SessionEnd>) -> UsageSession {
    UsageSession {
        usage_session: n,
        key_id: KEY.into(),
        operator_id: Some(OPERATOR.into()),
        machine_id: String::new(),
        started_at: at(T0 + u64::from(n) * 600),
        ended_at: end.map(|_| at(T0 + u64::from(n) * 600 + 300)),
        ended_by: end,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reporter_delivers_each_session_once_even_when_an_answer_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = opkey_server::start(
        ServerConfig::new(dir.path().join("opkey.db"), "admin-token"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let admin = AdminClient::new(server.url(), "admin-token");

    // The unit's key, registered with the backend; the bundle says where to report.
    let rng = SystemRandom::new();
    let pkcs8 = Zeroizing::new(
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec(),
    );
    let public_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let registered = admin
        .create_machine(&CreateMachine {
            name: "Excavator 7".into(),
            serial: String::new(),
            unit_type: None,
            keypad: None,
            ble_public_key: Some(b64(&public_key)),
        })
        .await
        .unwrap();
    let provisioning = admin.machine_provisioning(&registered.id).await.unwrap();
    assert_eq!(provisioning.server_url.as_deref(), Some(server.url().as_str()));

    // A unit that logged two sessions and was cut off during a third.
    let store = MemoryStore::new();
    let verifier = MachineState {
        next_usage_session: 4,
        ..MachineState::default()
    };
    let mut usage = vec![
        session(1, Some(SessionEnd::Command)),
        session(2, Some(SessionEnd::EngineStopped)),
        session(3, None),
    ];
    usage
        .iter_mut()
        .for_each(|s| s.machine_id = registered.id.clone());
    store
        .clone()
        .save(&StoredState {
            format: opkey_machine::store::STATE_FORMAT,
            machine_id: registered.id.clone(),
            verifier,
            usage,
            usage_uploaded_through: 0,
            keypad: Default::default(),
        })
        .unwrap();
    let machine = Machine::new(&provisioning, pkcs8.clone(), Box::new(store.clone())).unwrap();
    let machine = Arc::new(Mutex::new(machine));

    let proxy = Proxy::start(server.url().authority().to_owned()).await;
    let reporter = Reporter::new(machine.clone(), &pkcs8, &proxy.url, Arc::new(SystemClock)).unwrap();

    proxy.set(DOWN);
    let down = reporter.report().await;
    assert!(matches!(down, Err(ReportError::Unreachable(_))), "{down:?}");
    assert_eq!(numbers(&machine.lock().unwrap().pending_usage()), [1, 2, 3]);

    proxy.set(LOSE_ANSWER);
    let lost = reporter.report().await;
    assert!(matches!(lost, Err(ReportError::Unreachable(_))), "{lost:?}");
    assert_eq!(
        numbers(&machine.lock().unwrap().pending_usage()),
        [1, 2, 3],
        "nothing is acknowledged without a receipt"
    );
    let stored = admin.events(Some(&registered.id), None).await.unwrap();
    assert_eq!(
        stored.len(),
        3,
        "the backend stored them before the answer was lost"
    );

    proxy.set(PASS);
    let delivered = reporter.report().await.unwrap();
    assert_eq!(
        delivered,
        Delivered {
            sessions: 3,
            accepted: 0,
            updated: 0,
            duplicates: 3
        }
    );
    assert!(machine.lock().unwrap().pending_usage().is_empty());
    assert_eq!(store.saved().unwrap().usage_uploaded_through, 3);
    assert_eq!(reporter.report().await.unwrap(), Delivered::default());

    let events = admin.events(Some(&registered.id), None).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.event.usage_session, e.event.outcome.as_str(), e.source))
            .collect::<Vec<_>>(),
        [
            (Some(1), "command", EventSource::Machine),
            (Some(2), "engine_stopped", EventSource::Machine),
            (Some(3), "restart", EventSource::Machine),
        ],
        "each session once"
    );
    assert!(events.iter().all(|e| e.operator_id == OPERATOR));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_reports_to_the_bundles_server_and_exits_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Command;

    let dir = tempfile::tempdir().unwrap();
    let server = opkey_server::start(
        ServerConfig::new(dir.path().join("opkey.db"), "admin-token"),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let admin = AdminClient::new(server.url(), "admin-token");

    let key_file = dir.path().join("machine.key");
    let public_key = keygen_public_key(&key_file);
    let registered = admin
        .create_machine(&CreateMachine {
            name: "Excavator 7".into(),
            serial: String::new(),
            unit_type: None,
            keypad: None,
            ble_public_key: Some(public_key),
        })
        .await
        .unwrap();
    let bundle = dir.path().join("bundle.json");
    let provisioning = admin.machine_provisioning(&registered.id).await.unwrap();
    std::fs::write(&bundle, serde_json::to_vec(&provisioning).unwrap()).unwrap();
    let state = dir.path().join("state.json");
    let mut usage = vec![
        session(1, Some(SessionEnd::Timeout)),
        session(2, Some(SessionEnd::Command)),
    ];
    usage
        .iter_mut()
        .for_each(|s| s.machine_id = registered.id.clone());
    FileStore::new(&state)
        .save(&StoredState {
            format: opkey_machine::store::STATE_FORMAT,
            machine_id: registered.id.clone(),
            verifier: MachineState::default(),
            usage,
            usage_uploaded_through: 0,
            keypad: Default::default(),
        })
        .unwrap();

    let mut child = run_command(&bundle, &key_file, &state, &["--report-every", "3600"])
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
    assert_eq!(lines[1], "reported sessions=2 accepted=2 updated=0 duplicates=0");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    let stored: StoredState = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(stored.usage_uploaded_through, 2, "the acknowledgement is on disk");
    let events = admin.events(Some(&registered.id), None).await.unwrap();
    assert_eq!(events.len(), 2);
    server.shutdown().await;
}
