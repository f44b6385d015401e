//! Concurrency on one phone: two syncs, an unlock and a Rolling PIN watch at once, round
//! after round while the admin changes keys in between, must neither deadlock (a watchdog
//! fails the test instead of letting it hang) nor corrupt the store: the database passes
//! `PRAGMA integrity_check`, the keys equal a fresh phone's after a final sync, and every
//! unlock left exactly one usage event, uploaded exactly once.

use opkey_core::{
    CancelToken, CoreConfig, MemorySecretStore, OpKey, PinError, PinListener, PinView, RetryPolicy,
    UnlockOutcome,
};
use opkey_e2e::{Backend, Invitation, MachineUnit, personal_key_request};
use opkey_protocol::api::EditKey;
use opkey_protocol::{AccessType, Clock, SystemClock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration as StdDuration;
use time::Duration;

const ROUNDS: usize = 20;
/// One round normally takes well under a second; this only tells a deadlock from slowness.
const ROUND_LIMIT: StdDuration = StdDuration::from_secs(60);
/// The whole test, as a last resort if the runtime itself is stuck.
const TEST_LIMIT: StdDuration = StdDuration::from_secs(600);

/// The real core on its own folder, shared as the apps share it (`Arc<OpKey>`).
fn open_phone(dir: &std::path::Path) -> Arc<OpKey> {
    let mut config = CoreConfig::new(dir);
    config.allow_loopback_invites = true;
    config.device_name = "concurrency phone".to_owned();
    config.retry = RetryPolicy {
        attempts: 3,
        first_delay: StdDuration::from_millis(10),
        max_delay: StdDuration::from_millis(40),
    };
    config.request_timeout = StdDuration::from_secs(5);
    config.unlock.scan_timeout = StdDuration::from_secs(5);
    config.unlock.connect_timeout = StdDuration::from_secs(5);
    config.unlock.answer_timeout = StdDuration::from_secs(5);
    Arc::new(
        OpKey::open(
            config,
            Arc::new(MemorySecretStore::default()),
            None,
            Arc::new(SystemClock),
        )
        .expect("core opens"),
    )
}

/// Counts the PINs a watch delivered; remembers why it stopped, if it did.
#[derive(Default)]
struct Pins {
    seen: AtomicUsize,
    stopped: Mutex<Option<String>>,
}

impl PinListener for Pins {
    fn on_pin(&self, pin: PinView) {
        assert!(!pin.pin.is_empty());
        self.seen.fetch_add(1, Ordering::SeqCst);
    }

    fn on_stopped(&self, error: PinError) {
        *self.stopped.lock().unwrap() = Some(error.to_string());
    }
}

/// Kills the process if the test has not finished in time: a deadlock fails, never hangs.
struct Watchdog {
    done: mpsc::Sender<()>,
}

impl Watchdog {
    fn start(round: Arc<AtomicUsize>) -> Self {
        let (done, finished) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(TEST_LIMIT) {
                eprintln!(
                    "watchdog: the concurrency test is stuck in round {} after {TEST_LIMIT:?}: deadlock",
                    round.load(Ordering::SeqCst)
                );
                std::process::exit(101);
            }
        });
        Self { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

/// What the admin changes before round `round`: edits of the unlocked key and of the PIN
/// key, and an extra key on a third machine created, then edited, then deleted.
async fn admin_changes(
    backend: &Backend,
    round: usize,
    digital: &str,
    rolling: &str,
    operator: &str,
    spare: &str,
    extra: &mut Option<String>,
) {
    let now = SystemClock.now();
    backend
        .admin
        .edit_key(
            digital,
            &EditKey {
                valid_to: (round % 3 == 0).then(|| now + Duration::days(20 + round as i64)),
                description: Some(format!("excavator, round {round}")),
            },
        )
        .await
        .expect("digital key edited");
    backend
        .admin
        .edit_key(
            rolling,
            &EditKey {
                valid_to: None,
                description: Some(format!("quarry PIN, round {round}")),
            },
        )
        .await
        .expect("PIN key edited");
    match extra.take() {
        None => {
            let key = backend
                .admin
                .create_key(&personal_key_request(
                    operator,
                    spare,
                    AccessType::DigitalKey,
                    now - Duration::hours(1),
                    now + Duration::days(3),
                    format!("spare, round {round}"),
                ))
                .await
                .expect("extra key created");
            *extra = Some(key.id);
        }
        Some(id) if round % 4 == 1 => {
            backend
                .admin
                .edit_key(
                    &id,
                    &EditKey {
                        valid_to: None,
                        description: Some(format!("spare, edited in round {round}")),
                    },
                )
                .await
                .expect("extra key edited");
            *extra = Some(id);
        }
        Some(id) => backend.admin.delete_key(&id).await.expect("extra key deleted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_syncs_an_unlock_and_a_pin_watch_at_once_neither_deadlock_nor_corrupt_the_store() {
    let round_now = Arc::new(AtomicUsize::new(0));
    let _watchdog = Watchdog::start(round_now.clone());

    let backend = Backend::start().await;
    let excavator: MachineUnit = backend.registered_machine("Excavator EX-210").await;
    let telehandler = backend.machine("Telehandler TH-14").await;
    let spare = backend.machine("Dumper D-5").await;
    let (op, invitation) = backend.invited_operator("Ola Nordmann", "+47 412 30 001").await;
    let operator = op.operator.id.clone();
    let digital = backend
        .personal_key(&operator, excavator.id(), AccessType::DigitalKey, 30)
        .await;
    let rolling = backend
        .personal_key(&operator, &telehandler.id, AccessType::RollingPin, 30)
        .await;

    let dir = tempfile::tempdir().expect("temporary folder");
    let phone = open_phone(dir.path());
    phone.redeem_invite(&invitation.link).await.expect("redeem");
    phone.sync().await.expect("first sync");

    let mut unlock_events: Vec<String> = Vec::new();
    let mut lock_events: Vec<String> = Vec::new();
    let mut extra = None;
    for round in 1..=ROUNDS {
        round_now.store(round, Ordering::SeqCst);
        admin_changes(
            &backend,
            round,
            &digital.id,
            &rolling.id,
            &operator,
            &spare.id,
            &mut extra,
        )
        .await;

        let pins = Arc::new(Pins::default());
        let watcher = {
            let (phone, pins, key) = (phone.clone(), pins.clone(), rolling.id.clone());
            tokio::task::spawn_blocking(move || {
                let watch = phone.watch_pin(&key, pins).expect("the PIN watch starts");
                for _ in 0..20 {
                    phone.pin(&key).expect("the PIN reads while syncs run");
                    watch.tick();
                    std::thread::sleep(StdDuration::from_millis(2));
                }
                watch.cancel();
            })
        };
        let cancel = CancelToken::new();
        let at_once = async {
            tokio::join!(
                phone.sync(),
                phone.sync(),
                phone.unlock(excavator.id(), excavator.radio(), &cancel),
                watcher,
            )
        };
        let (first, second, unlocked, watched) = tokio::time::timeout(ROUND_LIMIT, at_once)
            .await
            .unwrap_or_else(|_| panic!("round {round}: stuck for {ROUND_LIMIT:?}: deadlock"));
        first.unwrap_or_else(|e| panic!("round {round}: first sync failed: {e}"));
        second.unwrap_or_else(|e| panic!("round {round}: second sync failed: {e}"));
        watched.unwrap_or_else(|e| panic!("round {round}: the PIN watcher failed: {e}"));
        assert!(
            pins.seen.load(Ordering::SeqCst) >= 1,
            "round {round}: no PIN delivered"
        );
        assert_eq!(
            *pins.stopped.lock().unwrap(),
            None,
            "round {round}: the watch stopped"
        );
        let report = unlocked.unwrap_or_else(|e| panic!("round {round}: unlock failed: {e}"));
        assert!(
            matches!(report.outcome, UnlockOutcome::Unlocked { .. }),
            "round {round}: {report:?}"
        );
        unlock_events.push(report.event_id);

        let locked = tokio::time::timeout(
            ROUND_LIMIT,
            phone.lock(excavator.id(), excavator.radio(), &CancelToken::new()),
        )
        .await
        .unwrap_or_else(|_| panic!("round {round}: lock stuck"))
        .unwrap_or_else(|e| panic!("round {round}: lock failed: {e}"));
        assert!(
            matches!(locked.outcome, UnlockOutcome::Locked { .. }),
            "round {round}: {locked:?}"
        );
        lock_events.push(locked.event_id);
    }

    // Everything settles: the last sync uploads what is left, the next uploads nothing.
    phone.sync().await.expect("final sync");
    let again = phone.sync().await.expect("one more sync");
    assert_eq!(again.events_uploaded, 0, "every event was uploaded already");

    // The store is whole.
    {
        let db = rusqlite::Connection::open_with_flags(
            dir.path().join(opkey_core::store::DB_FILE_NAME),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("the phone database opens");
        let check: Vec<String> = db
            .prepare("PRAGMA integrity_check")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(check, ["ok"]);
    }

    // Every unlock and lock left exactly one event on the phone, uploaded.
    let local = phone.usage_events().expect("usage events");
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &local {
        *per_id.entry(entry.event.id.as_str()).or_default() += 1;
        assert!(
            entry.uploaded_at.is_some(),
            "event {} still waits: {entry:?}",
            entry.event.id
        );
    }
    for id in unlock_events.iter().chain(&lock_events) {
        assert_eq!(per_id.get(id.as_str()), Some(&1), "event {id} on the phone");
    }
    assert_eq!(local.len(), 2 * ROUNDS, "{local:?}");

    // … and the backend holds each exactly once.
    let remote = backend
        .admin
        .events(Some(excavator.id()), Some(&operator))
        .await
        .expect("events");
    let mut remote_ids: BTreeMap<&str, usize> = BTreeMap::new();
    for view in &remote {
        *remote_ids.entry(view.event.id.as_str()).or_default() += 1;
    }
    for id in unlock_events.iter().chain(&lock_events) {
        assert_eq!(remote_ids.get(id.as_str()), Some(&1), "event {id} at the backend");
    }
    assert_eq!(remote.len(), 2 * ROUNDS, "no event twice, none extra");

    // The keys equal the backend's and those of a fresh phone of the same operator after
    // its first sync. A new phone supersedes the operator's Digital Keys (its grants get
    // a new version, so the replaced phone's stop opening machines): there only the
    // version differs, and it is the backend's new one.
    let mut keys = phone.keys().expect("keys");
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    for key in &keys {
        let current = backend.admin.key(&key.id).await.expect("the key at the backend");
        assert_eq!(key.version, current.version, "{} is behind the backend", key.id);
    }
    backend
        .admin
        .invite_operator(&operator)
        .await
        .expect("a new invitation");
    let second = Invitation::from_sms(&backend.latest_sms_to("+47 412 30 001").await);
    let fresh_dir = tempfile::tempdir().expect("temporary folder");
    let fresh = open_phone(fresh_dir.path());
    fresh
        .redeem_invite(&second.link)
        .await
        .expect("fresh phone redeems");
    fresh.sync().await.expect("fresh phone syncs");
    let mut fresh_keys = fresh.keys().expect("fresh keys");
    fresh_keys.sort_by(|a, b| a.id.cmp(&b.id));
    for key in &mut keys {
        if key.access_type == AccessType::DigitalKey {
            let superseded = backend.admin.key(&key.id).await.expect("the key at the backend");
            assert_eq!(superseded.version, key.version + 1, "{}", key.id);
            key.version = superseded.version;
        }
    }
    assert_eq!(keys, fresh_keys);
    assert!(keys.len() >= 2, "{keys:?}");
}
