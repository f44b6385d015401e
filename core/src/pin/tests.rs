//! PIN display against a manual clock: server-corrected time, clock skew, errors, the
//! rotation watch, secrets at rest.

use super::*;
use crate::config::CoreConfig;
use crate::secrets::MemorySecretStore;
use crate::sync::batch::PageFolder;
use opkey_protocol::api::{OperatorProfile, PinSecretRecord, SyncResponse};
use opkey_protocol::clock::ManualClock;
use opkey_protocol::encoding::b64;
use opkey_protocol::model::{RollingPinInfo, Validity};
use opkey_protocol::pin::{KeypadSlot, PinSpec};
use opkey_protocol::{Key, Machine, TelematicsUnit};
use time::macros::datetime;

const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";
const STATIC: &str = "48151623";
/// A whole minute: step boundaries of a 60 s period fall on it.
const T0: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

fn key(id: &str, access_type: AccessType) -> Key {
    Key {
        id: id.into(),
        organization_id: "org".into(),
        access_type,
        operator_id: Some("op".into()),
        machine_ids: vec!["m1".into()],
        validity: Validity {
            valid_from: datetime!(2026-05-01 00:00 UTC),
            valid_to: datetime!(2026-07-01 00:00 UTC),
        },
        description: String::new(),
        version: 1,
        revoked: false,
        card_id: None,
        rolling_pin: (access_type == AccessType::RollingPin).then_some(RollingPinInfo {
            slot: KeypadSlot::new(42).unwrap(),
            algorithm: PinAlgorithm::Sha256,
            digits: 6,
            period_s: 60,
        }),
    }
}

fn page(keys: Vec<Key>, secrets: Vec<PinSecretRecord>, deleted: &[&str]) -> SyncResponse {
    SyncResponse {
        cursor: 1,
        has_more: false,
        server_time: T0,
        operator: OperatorProfile {
            id: "op".into(),
            name: "Ann".into(),
            phone: "+4512345678".parse().unwrap(),
        },
        organizations: vec![],
        keys,
        deleted_key_ids: deleted.iter().map(|s| s.to_string()).collect(),
        machines: vec![Machine {
            id: "m1".into(),
            organization_id: "org".into(),
            name: "Excavator".into(),
            serial: String::new(),
            unit_type: TelematicsUnit::Tu700,
            keypad: opkey_protocol::Keypad::DualId,
            ble_public_key: None,
        }],
        grants: vec![],
        revocations: vec![],
        issuer_public_key: None,
        pin_secrets: secrets,
    }
}

fn seed_record(id: &str) -> PinSecretRecord {
    PinSecretRecord {
        key_id: id.into(),
        version: 1,
        seed: Some(b64(SEED)),
        static_pin: None,
    }
}

fn static_record(id: &str) -> PinSecretRecord {
    PinSecretRecord {
        key_id: id.into(),
        version: 1,
        seed: None,
        static_pin: Some(STATIC.into()),
    }
}

struct Phone {
    op: Arc<OpKey>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

/// A phone synced with: `rp` (Rolling PIN, seed), `rp-bare` (Rolling PIN, no seed yet),
/// `sp` (personal Static PIN), `dk` (Digital Key), `card` (key card); the phone clock is
/// `offset_ms` behind the server (negative: ahead).
fn phone(offset_ms: i64) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 - time::Duration::milliseconds(offset_ms)));
    let op = Arc::new(
        OpKey::open(
            CoreConfig::new(dir.path()),
            Arc::new(MemorySecretStore::new()),
            None,
            clock.clone(),
        )
        .unwrap(),
    );
    let mut card = key("card", AccessType::KeyCard);
    card.card_id = Some("CARD-0042".into());
    let keys = vec![
        key("rp", AccessType::RollingPin),
        key("rp-bare", AccessType::RollingPin),
        key("sp", AccessType::StaticPin),
        key("dk", AccessType::DigitalKey),
        card,
    ];
    apply(
        &op,
        page(keys, vec![seed_record("rp"), static_record("sp")], &[]),
        true,
        offset_ms,
    );
    Phone { op, clock, dir }
}

fn apply(op: &OpKey, page: SyncResponse, full: bool, offset_ms: i64) {
    let mut folder = PageFolder::default();
    folder.add(page).unwrap();
    let batch = folder.finish(full).unwrap();
    op.store().apply_sync(&batch, offset_ms, T0).unwrap();
    op.set_offset(offset_ms);
}

fn expected(server_unix: i64) -> String {
    let spec = PinSpec {
        algorithm: PinAlgorithm::Sha256,
        digits: 6,
        period_s: 60,
    };
    let seed = PinSeed::new(SEED.to_vec()).unwrap();
    rolling_pin(&seed, &spec, KeypadSlot::new(42).unwrap(), server_unix)
        .pin
        .as_str()
        .to_owned()
}

#[test]
fn the_pin_is_the_keys_totp_at_server_corrected_time() {
    let p = phone(0);
    p.clock.set(T0 + time::Duration::seconds(15));
    let view = p.op.pin("rp").unwrap();
    assert_eq!(view.pin, expected(T0.unix_timestamp() + 15));
    assert_eq!(view.pin.len(), 9);
    assert!(view.pin.starts_with("042"));
    assert_eq!(view.valid_from, T0);
    assert_eq!(view.valid_until, T0 + time::Duration::seconds(60));
    assert_eq!(view.accepted_until, T0 + time::Duration::seconds(120));
    assert_eq!(view.seconds_left, 45);
    assert_eq!((view.slot, view.digits, view.period_s), (42, 6, 60));
    assert_eq!(view.clock_warning, None);
    assert!(!format!("{view:?}").contains(&view.pin), "PIN in Debug");
}

#[test]
fn a_phone_clock_fast_by_less_than_a_step_still_shows_the_servers_pin_without_warning() {
    // Phone 40 s ahead of the server: offset −40 s.
    let p = phone(-40_000);
    let view = p.op.pin("rp").unwrap();
    assert_eq!(view.server_time, T0);
    assert_eq!(view.pin, expected(T0.unix_timestamp()));
    assert_eq!(view.seconds_left, 60);
    assert_eq!(view.clock_warning, None);
    let status = p.op.clock_status().unwrap();
    assert_eq!(
        (status.offset_s, status.measured, status.threshold_s),
        (-40, true, 60)
    );
    assert_eq!(status.warning, None);
}

#[test]
fn a_phone_clock_slow_or_fast_by_more_than_a_step_warns_and_the_pin_stays_right() {
    for (offset_ms, word) in [(95_000, "slow"), (-61_000, "fast")] {
        let p = phone(offset_ms);
        let view = p.op.pin("rp").unwrap();
        assert_eq!(view.pin, expected(T0.unix_timestamp()), "offset {offset_ms}");
        let warning = view.clock_warning.expect("a warning");
        assert!(warning.contains(word), "{warning}");
        let status = p.op.clock_status().unwrap();
        assert!(status.warning.unwrap().contains(word));
        assert_eq!(
            status.offset_s,
            offset_ms / 1000 + i64::from(offset_ms % 1000 >= 500)
        );
    }
}

#[test]
fn a_time_zone_change_on_the_phone_changes_nothing() {
    let p = phone(0);
    let utc = p.op.pin("rp").unwrap();
    p.clock.set(T0.to_offset(time::macros::offset!(+05:30)));
    let shifted = p.op.pin("rp").unwrap();
    assert_eq!(utc.pin, shifted.pin);
    assert_eq!(
        utc.valid_until.unix_timestamp(),
        shifted.valid_until.unix_timestamp()
    );
    assert_eq!(utc.seconds_left, shifted.seconds_left);
}

#[test]
fn keys_that_cannot_give_a_pin_say_why() {
    let p = phone(0);
    assert_eq!(
        p.op.pin("dk").unwrap_err(),
        PinError::NotRollingPin {
            id: "dk".into(),
            access_type: AccessType::DigitalKey
        }
    );
    assert_eq!(
        p.op.pin("rp-bare").unwrap_err(),
        PinError::NotSynced { id: "rp-bare".into() }
    );
    assert_eq!(
        p.op.pin("nope").unwrap_err(),
        PinError::KeyNotFound { id: "nope".into() }
    );
    p.clock.set(datetime!(2026-07-01 00:00 UTC));
    let err = p.op.pin("rp").unwrap_err();
    assert!(matches!(
        &err,
        PinError::NotUsable {
            reason: PinUnusable::Expired { .. },
            ..
        }
    ));
    assert!(
        err.to_string().contains("expired at 2026-07-01T00:00:00Z"),
        "{err}"
    );
    p.clock.set(datetime!(2026-04-30 23:59 UTC));
    assert!(matches!(
        p.op.pin("rp").unwrap_err(),
        PinError::NotUsable {
            reason: PinUnusable::NotYetValid { .. },
            ..
        }
    ));
    p.clock.set(T0);
    let mut revoked = key("rp", AccessType::RollingPin);
    revoked.revoked = true;
    revoked.version = 2;
    apply(&p.op, page(vec![revoked], vec![], &[]), false, 0);
    let err = p.op.pin("rp").unwrap_err();
    assert!(matches!(
        err,
        PinError::NotUsable {
            reason: PinUnusable::Revoked,
            ..
        }
    ));
    assert!(err.to_string().contains("revoked"));
}

#[test]
fn a_personal_static_pin_is_shown_and_cards_are_listed_with_their_id() {
    let p = phone(0);
    let view = p.op.static_pin("sp").unwrap();
    assert_eq!(view.pin, STATIC);
    assert!(!format!("{view:?}").contains(STATIC));
    assert!(matches!(
        p.op.static_pin("rp").unwrap_err(),
        PinError::NotStaticPin { .. }
    ));
    assert!(matches!(
        p.op.pin("sp").unwrap_err(),
        PinError::NotRollingPin { .. }
    ));
    let keys = p.op.keys().unwrap();
    let card = keys.iter().find(|k| k.id == "card").unwrap();
    assert_eq!(card.access_type, AccessType::KeyCard);
    assert_eq!(card.card_id.as_deref(), Some("CARD-0042"));
    let rp = keys.iter().find(|k| k.id == "rp").unwrap();
    assert_eq!(rp.rolling_pin.unwrap().slot.get(), 42);
    assert!(rp.pin_synced);
    assert!(!keys.iter().find(|k| k.id == "rp-bare").unwrap().pin_synced);
    assert!(keys.iter().find(|k| k.id == "sp").unwrap().pin_synced);
}

#[test]
fn the_pin_works_offline_for_the_keys_whole_validity() {
    // No server configured at all: nothing here can reach a network.
    let p = phone(0);
    let mut t = datetime!(2026-05-01 00:00 UTC);
    while t < datetime!(2026-07-01 00:00 UTC) {
        p.clock.set(t);
        assert_eq!(p.op.pin("rp").unwrap().pin, expected(t.unix_timestamp()));
        t += time::Duration::hours(37);
    }
    p.clock.set(datetime!(2026-06-30 23:59:59 UTC));
    assert_eq!(p.op.pin("rp").unwrap().seconds_left, 1);
}

#[test]
fn pin_secrets_are_never_in_the_database_files_in_plaintext() {
    let p = phone(0);
    assert_eq!(p.op.pin("rp").unwrap().pin, expected(T0.unix_timestamp()));
    let seed_text = b64(SEED);
    let needles: [&[u8]; 3] = [SEED, seed_text.as_bytes(), STATIC.as_bytes()];
    let scan = |dir: &std::path::Path| {
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == *needle),
                    "a PIN secret in plaintext on disk"
                );
            }
        }
    };
    scan(p.dir.path());
    let dir = p.dir.path().to_owned();
    drop(p.op);
    scan(&dir);
}

#[test]
fn a_deleted_keys_secret_goes_with_it() {
    let p = phone(0);
    apply(&p.op, page(vec![], vec![], &["rp", "sp"]), false, 0);
    assert_eq!(p.op.store().pin_secret_count().unwrap(), 0);
    assert_eq!(
        p.op.pin("rp").unwrap_err(),
        PinError::KeyNotFound { id: "rp".into() }
    );
}

#[test]
fn a_key_that_loses_its_pin_access_loses_its_secret_and_an_idle_delta_keeps_the_rest() {
    let p = phone(0);
    assert_eq!(p.op.store().pin_secret_count().unwrap(), 2);
    // An idle delta (nothing changed) leaves every secret where it was.
    apply(&p.op, page(vec![], vec![], &[]), false, 0);
    assert_eq!(p.op.store().pin_secret_count().unwrap(), 2);
    // The admin turns the Rolling PIN key into a key card: its seed goes, the static PIN stays.
    let mut card = key("rp", AccessType::KeyCard);
    card.card_id = Some("CARD-0043".into());
    card.version = 2;
    apply(&p.op, page(vec![card], vec![], &[]), false, 0);
    assert_eq!(p.op.store().pin_secret_count().unwrap(), 1);
    assert!(p.op.pin("rp").is_err(), "a key card shows no Rolling PIN");
}

#[test]
fn a_pin_secret_with_both_or_neither_half_fails_the_page() {
    let mut both = seed_record("rp");
    both.static_pin = Some(STATIC.into());
    let mut neither = seed_record("rp");
    neither.seed = None;
    let mut bad_static = static_record("sp");
    bad_static.static_pin = Some("12".into());
    for record in [both, neither, bad_static] {
        let err = PageFolder::default()
            .add(page(vec![], vec![record], &[]))
            .unwrap_err();
        assert!(matches!(err, Error::BadResponse { .. }));
        assert!(!err.to_string().contains(STATIC));
    }
}

#[derive(Default)]
struct Heard {
    pins: Mutex<Vec<PinView>>,
    stopped: Mutex<Vec<PinError>>,
}

impl PinListener for Heard {
    fn on_pin(&self, pin: PinView) {
        self.pins.lock().unwrap().push(pin);
    }
    fn on_stopped(&self, error: PinError) {
        self.stopped.lock().unwrap().push(error);
    }
}

impl Heard {
    fn steps(&self) -> Vec<u64> {
        self.pins.lock().unwrap().iter().map(|p| p.step).collect()
    }
}

#[test]
fn the_watch_fires_at_once_then_at_each_rotation_and_stops_on_cancel() {
    let p = phone(0);
    p.clock.set(T0 + time::Duration::seconds(50));
    let heard = Arc::new(Heard::default());
    let watch = p.op.watch_pin_manually("rp", heard.clone()).unwrap();
    let first = T0.unix_timestamp() as u64 / 60;
    assert_eq!(heard.steps(), [first]);

    p.clock.advance(time::Duration::seconds(9)); // 12:00:59: same step
    watch.tick();
    assert_eq!(heard.steps(), [first]);
    p.clock.advance(time::Duration::seconds(1)); // 12:01:00: the boundary
    watch.tick();
    watch.tick();
    assert_eq!(heard.steps(), [first, first + 1]);
    let second = heard.pins.lock().unwrap()[1].clone();
    assert_eq!(second.pin, expected(T0.unix_timestamp() + 60));
    assert_eq!(second.seconds_left, 60);
    p.clock.advance(time::Duration::seconds(125)); // two boundaries at once: one PIN
    watch.tick();
    assert_eq!(heard.steps(), [first, first + 1, first + 3]);

    watch.cancel();
    assert!(!watch.is_active());
    p.clock.advance(time::Duration::seconds(60));
    watch.tick();
    assert_eq!(heard.steps().len(), 3);
    assert!(heard.stopped.lock().unwrap().is_empty());
}

#[test]
fn the_watch_stops_with_the_reason_when_the_key_expires() {
    let p = phone(0);
    p.clock.set(datetime!(2026-06-30 23:59:30 UTC));
    let heard = Arc::new(Heard::default());
    let watch = p.op.watch_pin_manually("rp", heard.clone()).unwrap();
    p.clock.advance(time::Duration::seconds(30));
    watch.tick();
    assert_eq!(heard.steps().len(), 1);
    assert!(matches!(
        heard.stopped.lock().unwrap()[..],
        [PinError::NotUsable {
            reason: PinUnusable::Expired { .. },
            ..
        }]
    ));
    assert!(!watch.is_active());
}

#[test]
fn the_driven_watch_delivers_at_once_and_its_thread_ends_on_cancel() {
    let p = phone(0);
    let heard = Arc::new(Heard::default());
    let watch = p.op.watch_pin("rp", heard.clone()).unwrap();
    assert_eq!(heard.steps().len(), 1);
    // The manual clock stands still: the driver finds nothing new.
    watch.tick();
    assert_eq!(heard.steps().len(), 1);
    watch.cancel();
    assert!(!watch.is_active());
    assert!(p.op.watch_pin("dk", heard.clone()).is_err());
}
