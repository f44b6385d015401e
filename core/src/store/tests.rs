//! Stories about what the store keeps on disk, checked from inside the crate where the
//! secrets themselves can be compared with the file bytes.

use super::*;
use crate::config::{CoreConfig, RetryPolicy};
use crate::secrets::MemorySecretStore;
use crate::sync::batch::SyncBatch;
use crate::views::Enrollment;
use crate::{Error, OpKey, SecretStore};
use opkey_protocol::api::OperatorProfile;
use opkey_protocol::invite::InviteToken;
use opkey_protocol::model::Validity;
use opkey_protocol::{AccessType, Key, Keypad, Machine, Organization, SystemClock, TelematicsUnit};
use ring::rand::SystemRandom;
use std::sync::Arc;
use std::time::Duration;
use time::macros::datetime;
use url::Url;

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test]
async fn the_database_never_holds_the_phone_key_or_an_invite_secret_in_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = CoreConfig::new(tmp.path());
    config.allow_loopback_invites = true;
    config.retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let op = OpKey::open(config, secrets, None, Arc::new(SystemClock)).unwrap();

    // A redeem that cannot reach its server leaves the secret pending (sealed).
    let token = InviteToken::generate(&SystemRandom::new()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = op
        .redeem_invite(&format!("http://127.0.0.1:{port}/i/{}", token.expose()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert!(op.status().unwrap().pending_invite);

    let pkcs8 = op.store().load_secret(SLOT_SIGNER).unwrap().unwrap();
    // In ring's P-256 PKCS#8 the private scalar follows the first `04 20`.
    let at = pkcs8.windows(2).position(|w| w == [0x04, 0x20]).unwrap() + 2;
    let scalar = &pkcs8[at..at + 32];
    assert!(tmp.path().join("opkey.db-wal").exists());
    assert!(!files_contain(tmp.path(), scalar), "private key in plaintext");
    assert!(
        !files_contain(tmp.path(), token.expose().as_bytes()),
        "invite token in plaintext"
    );
    let pending = op.store().load_secret(SLOT_INVITE).unwrap().unwrap();
    assert!(!files_contain(tmp.path(), &pending));

    drop(op);
    assert!(!files_contain(tmp.path(), scalar));
    assert!(!files_contain(tmp.path(), token.expose().as_bytes()));
}

#[test]
fn a_sealed_secret_copied_into_another_slot_does_not_open() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let store = Store::open(tmp.path(), &secrets).unwrap();
    store.save_secret("a", b"seed one").unwrap();
    store
        .conn
        .execute(
            "INSERT INTO vault (slot, sealed) SELECT 'b', sealed FROM vault WHERE slot = 'a'",
            [],
        )
        .unwrap();
    assert_eq!(&*store.load_secret("a").unwrap().unwrap(), b"seed one");
    assert_eq!(
        store.load_secret("b").unwrap_err(),
        StoreError::SecretUnreadable { slot: "b".into() }
    );
}

fn batch(n: usize) -> SyncBatch {
    let keys = (0..n)
        .map(|i| Key {
            id: format!("key-{i:05}"),
            organization_id: "org".into(),
            access_type: AccessType::RollingPin,
            operator_id: Some("op".into()),
            machine_ids: vec![format!("m-{}", i % 50)],
            validity: Validity {
                valid_from: datetime!(2026-01-01 00:00 UTC),
                valid_to: datetime!(2027-01-01 00:00:00.123456789 UTC),
            },
            description: "a fairly long description to take some room on disk".repeat(4),
            version: i as u64,
            revoked: false,
            card_id: None,
            rolling_pin: None,
        })
        .collect();
    let machines = (0..50)
        .map(|i| Machine {
            id: format!("m-{i}"),
            organization_id: "org".into(),
            name: format!("Machine {i}"),
            serial: String::new(),
            unit_type: TelematicsUnit::Tu700,
            keypad: Keypad::K300,
            ble_public_key: None,
        })
        .collect();
    SyncBatch {
        pin_secrets: vec![],
        full: true,
        keys,
        deleted_key_ids: vec![],
        machines,
        operator: OperatorProfile {
            id: "op".into(),
            name: "Ann".into(),
            phone: "+4512345678".parse().unwrap(),
        },
        organizations: vec![Organization {
            id: "org".into(),
            name: "Acme".into(),
        }],
        cursor: n as u64,
        grants: vec![],
        revocations: vec![],
        issuer_public_key: None,
    }
}

#[test]
fn a_full_disk_during_sync_reports_disk_full_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let mut store = Store::open(tmp.path(), &secrets).unwrap();
    let now = datetime!(2026-06-01 00:00 UTC);
    store.apply_sync(&batch(10), 0, now).unwrap();
    let before = (store.keys(now).unwrap(), store.phone().unwrap());

    store.limit_pages(store.page_count() + 2);
    let mut big = batch(3000);
    big.full = false;
    assert_eq!(store.apply_sync(&big, 5, now).unwrap_err(), StoreError::DiskFull);
    assert_eq!((store.keys(now).unwrap(), store.phone().unwrap()), before);
}

#[test]
fn times_round_trip_to_the_nanosecond() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path(), &MemorySecretStore::new()).unwrap();
    let now = datetime!(2026-06-01 00:00 UTC);
    store.apply_sync(&batch(1), 0, now).unwrap();
    let key = store.key("key-00000", now).unwrap().unwrap();
    assert_eq!(key.valid_to, datetime!(2027-01-01 00:00:00.123456789 UTC));
    assert_eq!(key.machines[0].keypad, Keypad::K300);
}

#[test]
fn opening_and_listing_ten_thousand_keys_is_quick() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let now = datetime!(2026-06-01 00:00 UTC);
    {
        let mut store = Store::open(tmp.path(), &secrets).unwrap();
        let started = std::time::Instant::now();
        store.apply_sync(&batch(10_000), 0, now).unwrap();
        eprintln!("apply 10k: {:?}", started.elapsed());
    }
    let started = std::time::Instant::now();
    let store = Store::open(tmp.path(), &secrets).unwrap();
    let keys = store.keys(now).unwrap();
    let elapsed = started.elapsed();
    eprintln!("open + list 10k: {elapsed:?}");
    assert_eq!(keys.len(), 10_000);
    assert!(keys.iter().all(|k| k.machines.len() == 1));
    // Generous bound for unoptimised test builds; the benchmark checks the real target.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn enrolling_replaces_organizations_and_clears_the_pending_invite() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path(), &MemorySecretStore::new()).unwrap();
    let server = Url::parse("http://127.0.0.1:1/").unwrap();
    store.begin_redeem(b"token:x", &server).unwrap();
    assert_eq!(store.phone().unwrap().pending_server_url, Some(server.clone()));
    let e = Enrollment {
        phone_id: "phn_1".into(),
        operator: OperatorProfile {
            id: "op".into(),
            name: "Ann".into(),
            phone: "+4512345678".parse().unwrap(),
        },
        organizations: vec![Organization {
            id: "o1".into(),
            name: "One".into(),
        }],
        server_url: server.clone(),
    };
    assert!(!store.save_enrollment(&e, 1500).unwrap());
    let phone = store.phone().unwrap();
    assert_eq!(phone.pending_server_url, None);
    assert_eq!(phone.server_offset_ms, Some(1500));
    assert_eq!(store.load_secret(SLOT_INVITE).unwrap(), None);
    assert_eq!(store.organizations().unwrap(), e.organizations);
}

#[test]
fn a_version_1_store_is_migrated_to_the_latest_and_keeps_its_keys() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(tmp.path().join(DB_FILE_NAME)).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO keys VALUES ('k1', 'org', 'digital-key', 'op', '', 0, 0, 4000000000, 0, 3, 0, NULL)",
            [],
        )
        .unwrap();
        conn.execute("UPDATE phone SET cursor = 7 WHERE id = 1", [])
            .unwrap();
    }
    let store = Store::open(tmp.path(), &MemorySecretStore::new()).unwrap();
    let version: u32 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(store.phone().unwrap().cursor, 7);
    let now = datetime!(2026-06-01 00:00 UTC);
    assert_eq!(store.key("k1", now).unwrap().unwrap().version, 3);
    assert_eq!(store.issuer_public_key().unwrap(), None);
    assert!(store.outbox().unwrap().is_empty());
}

fn grant(key: &str, machines: &[&str], serial: u32, issued_at: u64) -> crate::sync::batch::BatchGrant {
    let ids: Vec<String> = machines.iter().map(|m| m.to_string()).collect();
    crate::sync::batch::BatchGrant {
        key_id: key.into(),
        chunk: crate::sync::batch::chunk_of(&ids),
        serial,
        valid_from: 0,
        valid_to: 10,
        issued_at,
        bytes: format!("{key}/{serial}/{issued_at}").into_bytes(),
    }
}

fn grant_tags(store: &Store, machine: &str) -> Vec<String> {
    let mut tags: Vec<String> = store
        .machine_access(machine)
        .unwrap()
        .grants
        .into_iter()
        .map(|g| String::from_utf8(g.bytes).unwrap())
        .collect();
    tags.sort();
    tags
}

#[test]
fn grants_are_renewed_superseded_by_newer_serials_and_go_with_their_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path(), &MemorySecretStore::new()).unwrap();
    let now = datetime!(2026-06-01 00:00 UTC);
    let mut b = batch(2);
    b.grants = vec![
        grant("key-00000", &["m-0"], 1, 100),
        grant("key-00001", &["m-1"], 1, 100),
    ];
    b.issuer_public_key = Some(vec![4; 65]);
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(grant_tags(&store, "m-0"), ["key-00000/1/100"]);
    assert_eq!(store.issuer_public_key().unwrap(), Some(vec![4; 65]));

    // A renewal replaces the grant; a stale one arriving later does not.
    let mut b = batch(2);
    b.full = false;
    b.keys.clear();
    b.grants = vec![grant("key-00000", &["m-0"], 1, 200)];
    store.apply_sync(&b, 0, now).unwrap();
    b.grants = vec![grant("key-00000", &["m-0"], 1, 150)];
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(grant_tags(&store, "m-0"), ["key-00000/1/200"]);

    // An edit (serial 2) supersedes every grant of serial 1, whatever machines it named.
    b.grants = vec![grant("key-00000", &["m-0", "m-9"], 2, 300)];
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(grant_tags(&store, "m-0"), ["key-00000/2/300"]);
    b.grants = vec![grant("key-00000", &["m-0"], 1, 400)];
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(grant_tags(&store, "m-0"), ["key-00000/2/300"]);

    // A deleted key takes its grants and what machines cached of it along.
    store
        .remember_cached_grant(
            "m-1",
            "key-00001",
            CachedGrant {
                serial: 1,
                issued_at: 100,
            },
        )
        .unwrap();
    assert_eq!(store.machine_access("m-1").unwrap().cached.len(), 1);
    b.grants.clear();
    b.deleted_key_ids = vec!["key-00001".into()];
    store.apply_sync(&b, 0, now).unwrap();
    let access = store.machine_access("m-1").unwrap();
    assert!(access.keys.is_empty() && access.grants.is_empty() && access.cached.is_empty());
    let left: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM grants WHERE key_id = 'key-00001'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_revocation_list_is_replaced_only_by_a_higher_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path(), &MemorySecretStore::new()).unwrap();
    let now = datetime!(2026-06-01 00:00 UTC);
    let list = |sequence: u32| crate::sync::batch::BatchRevocations {
        machine_id: "m-0".into(),
        sequence,
        bytes: vec![sequence as u8],
    };
    let mut b = batch(1);
    b.revocations = vec![list(3)];
    store.apply_sync(&b, 0, now).unwrap();
    b.full = false;
    b.revocations = vec![list(2)];
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(store.machine_access("m-0").unwrap().revocations, Some(vec![3]));
    b.revocations = vec![list(5)];
    store.apply_sync(&b, 0, now).unwrap();
    assert_eq!(store.machine_access("m-0").unwrap().revocations, Some(vec![5]));
}

#[test]
fn the_outbox_keeps_events_until_acknowledged_and_across_restarts() {
    use opkey_protocol::api::{UsageEvent, UsageEventKind};
    let tmp = tempfile::tempdir().unwrap();
    let secrets = MemorySecretStore::new();
    let event = |id: &str| UsageEvent {
        id: id.into(),
        kind: UsageEventKind::UnlockAttempt,
        key_id: Some("k1".into()),
        machine_id: "m1".into(),
        at: datetime!(2026-06-01 00:00 UTC),
        outcome: "unlocked".into(),
        usage_session: Some(4),
        ended_at: None,
    };
    {
        let store = Store::open(tmp.path(), &secrets).unwrap();
        store.add_to_outbox("op", &event("e1")).unwrap();
        store.add_to_outbox("op", &event("e2")).unwrap();
        store.add_to_outbox("op_other", &event("e3")).unwrap();
    }
    let mut store = Store::open(tmp.path(), &secrets).unwrap();
    let pending = store.pending_events("op", 500).unwrap();
    assert_eq!(pending, [event("e1"), event("e2")]);
    assert_eq!(store.pending_events("op", 1).unwrap(), [event("e1")]);
    let now = datetime!(2026-06-01 00:00 UTC).unix_timestamp();
    store.mark_uploaded(&["e1".into()], now).unwrap();
    assert_eq!(store.pending_event_count("op").unwrap(), 1);
    assert_eq!(store.outbox().unwrap()[0].uploaded_s, Some(now));
    // Acknowledged events are pruned after 30 days.
    store.mark_uploaded(&["e2".into()], now + 31 * 86_400).unwrap();
    let ids: Vec<String> = store.outbox().unwrap().into_iter().map(|r| r.event.id).collect();
    assert_eq!(ids, ["e2", "e3"]);
}
