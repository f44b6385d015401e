//! A bad network between the phone and the backend: sync and the upload of usage events
//! through the seeded fault-injecting TCP proxy ([`opkey_e2e::fault_proxy`]). A failed
//! sync fails with a typed error and leaves the store exactly as it was; with faults on a
//! fraction of the exchanges, repeated syncs converge to what a phone on a clean network
//! holds; usage events arrive at the backend exactly once, also when an upload that did
//! reach the backend lost its answer and was sent again.
//!
//! Random schedules print their seed; rerun one with `OPKEY_FAULT_SEED=<seed>`.

use opkey_core::{CancelToken, Error, KeyView, Status};
use opkey_e2e::fault_proxy::{Exchange, NetFault, NetFaultProxy, Rule, Schedule, SplitMix64};
use opkey_e2e::{Backend, MachineUnit, Phone, all_bytes_under};
use opkey_protocol::AccessType;
use opkey_protocol::api::{EditKey, EventSource};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every kind of fault, each with settings that make the exchange fail for good (the
/// harness' core gives up on a request after 1 s). `NoAnswer` is left out: it fails the
/// sync the way the long latency does, at the same cost of one timeout per try, and
/// `tests/sync.rs` covers it.
fn failing_faults() -> Vec<NetFault> {
    vec![
        NetFault::Latency(Duration::from_millis(1500)),
        NetFault::ResetBeforeForward,
        NetFault::ResetAfter { bytes: 0 },
        NetFault::ResetAfter { bytes: 40 },
        NetFault::Truncate,
        NetFault::GarbageBody,
        NetFault::Status(500),
        NetFault::Status(502),
        NetFault::Status(503),
        NetFault::Drip {
            chunk: 4,
            every: Duration::from_millis(100),
        },
    ]
}

/// A mix for "a fraction of the exchanges": mostly faults a retry gets over, some that
/// cost a whole attempt.
fn mixed_faults() -> Vec<NetFault> {
    vec![
        NetFault::Latency(Duration::from_millis(30)),
        NetFault::Latency(Duration::from_millis(1200)),
        NetFault::ResetBeforeForward,
        NetFault::ResetAfter { bytes: 0 },
        NetFault::ResetAfter { bytes: 100 },
        NetFault::Truncate,
        NetFault::Status(500),
        NetFault::Status(502),
        NetFault::Status(503),
        NetFault::Drip {
            chunk: 256,
            every: Duration::from_millis(2),
        },
    ]
}

/// The default fault seed: fixed, so a test run is repeatable. It is the seed that found
/// two session answers lost in a row (a spent challenge twice). Explore others with
/// `OPKEY_FAULT_SEED=random` or a number.
const DEFAULT_SEED: u64 = 1_795_463_654_654_955_689;

fn seed() -> u64 {
    let seed = match std::env::var("OPKEY_FAULT_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(DEFAULT_SEED),
        Some(number) => number.parse().unwrap_or(DEFAULT_SEED),
        None => DEFAULT_SEED,
    };
    println!("fault seed {seed} (rerun with OPKEY_FAULT_SEED={seed})");
    seed
}

/// What a failed attempt must not change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    keys: Vec<KeyView>,
    cursor: u64,
    last_sync_at: Option<time::OffsetDateTime>,
    key_count: u32,
    enrolled: bool,
    events: Vec<(String, bool)>,
    bytes: Vec<u8>,
}

fn snapshot(phone: &Phone) -> Snapshot {
    let Status {
        cursor,
        last_sync_at,
        key_count,
        enrolled,
        ..
    } = phone.core.status().expect("status readable");
    Snapshot {
        keys: phone.core.keys().expect("keys readable"),
        cursor,
        last_sync_at,
        key_count,
        enrolled,
        events: phone
            .core
            .usage_events()
            .expect("outbox readable")
            .into_iter()
            .map(|e| (e.event.id, e.uploaded_at.is_some()))
            .collect(),
        bytes: store_bytes(phone.dir.path()),
    }
}

/// The bytes of the phone's files (database, WAL, secrets), with their names, in name
/// order. The WAL index (`-shm`) is left out: it is shared memory readers mark.
fn store_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("phone folder readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        .collect();
    files.sort();
    let mut bytes = Vec::new();
    for path in files {
        bytes.extend(path.file_name().unwrap_or_default().as_encoded_bytes());
        if path.is_dir() {
            bytes.extend(all_bytes_under(&path));
        } else {
            bytes.extend(std::fs::read(&path).expect("file readable"));
        }
    }
    bytes
}

/// Compares two snapshots without printing the store's bytes.
fn assert_unchanged(before: &Snapshot, after: &Snapshot, context: &str) {
    assert_eq!(before.keys, after.keys, "{context}: the keys changed");
    assert_eq!(
        (
            before.cursor,
            before.last_sync_at,
            before.key_count,
            before.enrolled
        ),
        (after.cursor, after.last_sync_at, after.key_count, after.enrolled),
        "{context}: the sync state changed"
    );
    assert_eq!(before.events, after.events, "{context}: the outbox changed");
    assert!(
        before.bytes == after.bytes,
        "{context}: the store's files changed ({} bytes before, {} after)",
        before.bytes.len(),
        after.bytes.len()
    );
}

/// An operator with a phone that reaches the backend only through `proxy`, enrolled and
/// synced on a clean network.
async fn phone_behind(backend: &Backend, proxy: &NetFaultProxy, phone_number: &str) -> (String, Phone) {
    let (op, invitation) = backend.invited_operator("Ola Nordmann", phone_number).await;
    let phone = Phone::for_server(&proxy.url);
    phone
        .core
        .redeem_invite(&invitation.link)
        .await
        .expect("redeem through the proxy");
    (op.operator.id, phone)
}

fn spoiled(journal: &[Exchange], path: &str) -> Vec<NetFault> {
    journal
        .iter()
        .filter(|e| e.path.starts_with(path) && e.spoiled())
        .map(|e| e.fault)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_network_fault_fails_the_sync_with_a_typed_error_and_leaves_the_store_as_it_was() {
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let (op, phone) = phone_behind(&backend, &proxy, "+47 412 30 001").await;
    let machine = backend.machine("Excavator EX-210").await;
    let first = backend
        .personal_key(&op, &machine.id, AccessType::DigitalKey, 3)
        .await;
    phone.core.sync().await.expect("a clean first sync");
    // Changes wait on the server; every sync below is spoiled.
    backend
        .personal_key(&op, &machine.id, AccessType::RollingPin, 3)
        .await;
    backend
        .admin
        .edit_key(
            &first.id,
            &EditKey {
                valid_to: None,
                description: Some("hire extended".into()),
            },
        )
        .await
        .expect("key edited");
    let before = snapshot(&phone);

    for fault in failing_faults() {
        proxy.set(Rule::new("/v1/sync", Schedule::Always(fault)));
        let err = phone.core.sync().await.expect_err("a spoiled sync fails");
        let expected = match fault {
            NetFault::Latency(_) | NetFault::NoAnswer | NetFault::Drip { .. } => {
                matches!(err, Error::Timeout)
            }
            NetFault::ResetBeforeForward | NetFault::ResetAfter { bytes: 0 } => {
                matches!(err, Error::Network { .. })
            }
            NetFault::ResetAfter { .. } | NetFault::Truncate => {
                matches!(err, Error::Network { .. } | Error::BadResponse { .. })
            }
            NetFault::GarbageBody => matches!(err, Error::BadResponse { .. }),
            NetFault::Status(500) => matches!(
                err,
                Error::Server {
                    status: 500,
                    code: Some(_),
                    ..
                }
            ),
            NetFault::Status(s) => matches!(err, Error::Server { status, code: None, .. } if status == s),
            NetFault::Pass => false,
        };
        assert!(expected, "{fault:?} gave {err:?}");
        assert!(err.is_transient(), "{fault:?}: {err:?} is worth retrying later");
        let journal = proxy.journal();
        assert!(
            spoiled(&journal, "/v1/sync").contains(&fault),
            "{fault:?} was never applied: {journal:?}"
        );
        assert_unchanged(&before, &snapshot(&phone), &format!("{fault:?}"));
    }

    proxy.clear();
    let report = phone.core.sync().await.expect("the network is back");
    assert_eq!(report.upserted, 2);
    let keys = phone.core.keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.description == "hire extended"));
}

/// The key list a phone on a clean network holds: a second phone of the same operator.
async fn clean_phone_keys(backend: &Backend, op: &str, phone_number: &str) -> Vec<KeyView> {
    backend.admin.invite_operator(op).await.expect("invited again");
    let invitation = opkey_e2e::Invitation::from_sms(&backend.latest_sms_to(phone_number).await);
    let clean = Phone::new();
    clean
        .core
        .redeem_invite(&invitation.link)
        .await
        .expect("clean redeem");
    clean.core.sync().await.expect("clean sync");
    clean.core.keys().expect("clean keys")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_on_half_the_exchanges_repeated_syncs_converge_to_a_clean_phones_keys() {
    let seed = seed();
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let number = "+47 412 30 002";
    let (op, phone) = phone_behind(&backend, &proxy, number).await;
    let machines = [
        backend.machine("Excavator EX-210").await,
        backend.machine("Wheel loader").await,
        backend.machine("Scissor lift").await,
    ];
    proxy.set(Rule::new(
        "",
        Schedule::Random {
            seed,
            per_mille: 500,
            kinds: mixed_faults(),
        },
    ));
    let mut rng = SplitMix64::new(seed);
    // Keys the admin may still edit, delete or revoke.
    let mut keys: Vec<String> = Vec::new();
    let mut failures = 0;
    // At least 8 rounds, and on until the schedule has spoiled 16 exchanges.
    for round in 0.. {
        if round >= 8 && spoiled(&proxy.journal(), "/").len() >= 16 {
            break;
        }
        assert!(round < 80, "seed {seed}: the schedule spoiled almost nothing");
        // The admin changes something between syncs: new keys, edits, deletions, revocations.
        let machine = &machines[rng.below(machines.len() as u64) as usize];
        let roll = if round < 2 || keys.is_empty() {
            0
        } else {
            rng.below(4)
        };
        match roll {
            0 => {
                let kind = [
                    AccessType::DigitalKey,
                    AccessType::RollingPin,
                    AccessType::KeyCard,
                ][rng.below(3) as usize];
                keys.push(backend.personal_key(&op, &machine.id, kind, 5).await.id);
            }
            1 => {
                let id = &keys[rng.below(keys.len() as u64) as usize];
                backend
                    .admin
                    .edit_key(
                        id,
                        &EditKey {
                            valid_to: None,
                            description: Some(format!("round {round}")),
                        },
                    )
                    .await
                    .expect("key edited");
            }
            2 => {
                let id = keys.remove(rng.below(keys.len() as u64) as usize);
                backend.admin.delete_key(&id).await.expect("key deleted");
            }
            _ => {
                // A revoked key stays on the phone but is not edited or revoked again.
                let id = keys.remove(rng.below(keys.len() as u64) as usize);
                backend.admin.revoke_key(&id).await.expect("key revoked");
            }
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let before = snapshot(&phone);
            match phone.core.sync().await {
                Ok(_) => break,
                Err(e) => {
                    failures += 1;
                    assert!(e.is_transient(), "seed {seed}, round {round}: {e:?}");
                    assert_unchanged(
                        &before,
                        &snapshot(&phone),
                        &format!("seed {seed}, round {round}, attempt {attempts}: {e:?}"),
                    );
                    assert!(attempts < 20, "seed {seed}: round {round} never synced");
                }
            }
        }
        let mut on_phone: Vec<(String, u64)> = phone
            .core
            .keys()
            .unwrap()
            .into_iter()
            .map(|k| (k.id, k.version))
            .collect();
        let mut on_server: Vec<(String, u64)> = backend
            .admin
            .keys(Some(&op), None)
            .await
            .expect("keys listed")
            .into_iter()
            .map(|k| (k.id, k.version))
            .collect();
        on_phone.sort();
        on_server.sort();
        assert_eq!(on_phone, on_server, "seed {seed}: round {round} did not converge");
    }
    let journal = proxy.journal();
    let faults = spoiled(&journal, "/");
    println!(
        "{} exchanges, {} spoiled, {failures} failed syncs",
        journal.len(),
        faults.len()
    );

    proxy.clear();
    assert_eq!(
        phone.core.keys().unwrap(),
        clean_phone_keys(&backend, &op, number).await,
        "seed {seed}: the phone behind the faulty network holds other keys than a clean phone"
    );
}

/// Each of `phone`'s usage events, by id, with how often the backend holds it.
async fn events_at_the_backend(backend: &Backend, op: &str) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for e in backend.admin.events(None, Some(op)).await.expect("events listed") {
        if e.source == EventSource::Phone {
            *count.entry(e.event.id).or_insert(0) += 1;
        }
    }
    count
}

/// Every event the phone recorded is at the backend exactly once, and nothing else is.
async fn assert_exactly_once(backend: &Backend, op: &str, phone: &Phone, context: &str) {
    let on_phone: Vec<String> = phone
        .core
        .usage_events()
        .unwrap()
        .into_iter()
        .map(|e| e.event.id)
        .collect();
    let at_backend = events_at_the_backend(backend, op).await;
    let expected: BTreeMap<String, usize> = on_phone.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(at_backend, expected, "{context}");
}

async fn unlocks(phone: &Phone, machine: &MachineUnit, n: usize) {
    for _ in 0..n {
        phone
            .core
            .unlock(machine.id(), machine.radio(), &CancelToken::new())
            .await
            .expect("the machine answers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_events_uploaded_through_a_faulty_network_arrive_exactly_once() {
    let seed = seed();
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let machine = backend.registered_machine("Excavator EX-210").await;
    let (op, phone) = phone_behind(&backend, &proxy, "+47 412 30 003").await;
    backend
        .personal_key(&op, machine.id(), AccessType::DigitalKey, 5)
        .await;
    phone.core.sync().await.expect("a clean first sync");

    // The upload reaches the backend and its answer is lost (reset, then cut off): the
    // core sends the batch again, within its three tries; the backend keeps each event once.
    unlocks(&phone, &machine, 3).await;
    proxy.set(
        Rule::new(
            "/v1/events",
            Schedule::Script(vec![NetFault::ResetAfter { bytes: 0 }, NetFault::Truncate]),
        )
        .method("POST"),
    );
    let report = phone.core.sync().await.expect("the sync itself is clean");
    assert_eq!((report.events_uploaded, report.events_pending), (3, 0));
    let uploads: Vec<Exchange> = proxy
        .journal()
        .into_iter()
        .filter(|e| e.method == "POST" && e.path.starts_with("/v1/events"))
        .collect();
    let seen: Vec<(NetFault, bool, Option<u16>)> = uploads
        .iter()
        .map(|e| (e.fault, e.forwarded, e.upstream_status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (NetFault::ResetAfter { bytes: 0 }, true, Some(200)),
            (NetFault::Truncate, true, Some(200)),
            (NetFault::Pass, true, Some(200)),
        ],
        "the same batch reached the backend three times"
    );
    assert!(
        phone
            .core
            .usage_events()
            .unwrap()
            .iter()
            .all(|e| e.uploaded_at.is_some())
    );
    assert_exactly_once(&backend, &op, &phone, "after a retried upload").await;

    // Every upload attempt reaches the backend and loses its answer: the sync still
    // succeeds, the events stay pending on the phone, the next clean sync sends them again.
    unlocks(&phone, &machine, 2).await;
    proxy.set(Rule::new("/v1/events", Schedule::Always(NetFault::ResetAfter { bytes: 0 })).method("POST"));
    let report = phone
        .core
        .sync()
        .await
        .expect("a failed upload does not fail the sync");
    assert_eq!((report.events_uploaded, report.events_pending), (0, 2));
    assert_eq!(
        events_at_the_backend(&backend, &op).await.len(),
        5,
        "the lost answers came after the backend stored the events"
    );
    proxy.clear();
    let report = phone.core.sync().await.expect("clean sync");
    assert_eq!((report.events_uploaded, report.events_pending), (2, 0));
    assert_exactly_once(&backend, &op, &phone, "after uploads whose answers were lost").await;

    // Random faults on every exchange, round after round.
    proxy.set(Rule::new(
        "",
        Schedule::Random {
            seed,
            per_mille: 400,
            kinds: mixed_faults(),
        },
    ));
    let mut rng = SplitMix64::new(seed);
    for round in 0..6 {
        unlocks(&phone, &machine, 1 + rng.below(3) as usize).await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts <= 20, "seed {seed}: round {round} never uploaded");
            let before = snapshot(&phone);
            match phone.core.sync().await {
                Ok(report) if report.events_pending == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    assert!(e.is_transient(), "seed {seed}, round {round}: {e:?}");
                    assert_unchanged(&before, &snapshot(&phone), &format!("seed {seed}, round {round}"));
                }
            }
        }
        assert_exactly_once(&backend, &op, &phone, &format!("seed {seed}, round {round}")).await;
    }
    assert!(
        !spoiled(&proxy.journal(), "/v1/").is_empty(),
        "seed {seed}: nothing was spoiled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_answer_costs_a_new_challenge_not_the_sync() {
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let (op, phone) = phone_behind(&backend, &proxy, "+47 412 30 004").await;
    let machine = backend.machine("Excavator EX-210").await;
    backend
        .personal_key(&op, &machine.id, AccessType::DigitalKey, 3)
        .await;

    // The session request reaches the backend, which uses up the challenge; its answer is
    // lost and the retry carries a used challenge.
    proxy.set(
        Rule::new(
            "/v1/session",
            Schedule::Script(vec![NetFault::Pass, NetFault::ResetAfter { bytes: 0 }]),
        )
        .method("POST"),
    );
    let report = phone.core.sync().await.expect("a new challenge gets the session");
    assert_eq!(report.upserted, 1);
    let sessions: Vec<(String, NetFault, Option<u16>)> = proxy
        .journal()
        .into_iter()
        .filter(|e| e.path.starts_with("/v1/session"))
        .map(|e| (e.path, e.fault, e.upstream_status))
        .collect();
    let pass = NetFault::Pass;
    assert_eq!(
        sessions,
        vec![
            ("/v1/session/challenge".to_owned(), pass, Some(200)),
            (
                "/v1/session".to_owned(),
                NetFault::ResetAfter { bytes: 0 },
                Some(200)
            ),
            ("/v1/session".to_owned(), pass, Some(401)),
            ("/v1/session/challenge".to_owned(), pass, Some(200)),
            ("/v1/session".to_owned(), pass, Some(200)),
        ]
    );
}
