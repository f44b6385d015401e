//! The keypad and card reader in process: Rolling PINs at ±1 step, once each; Static PINs;
//! cards; From/To and revocation; throttling with growing lockouts that survive restarts;
//! the same relay and usage sessions as a BLE unlock; tables that never roll back; no
//! secret in `Debug` output.

use crate::support::*;
use opkey_machine::keypad::KeypadState;
use opkey_machine::{
    FileStore, KeypadAccess, KeypadOutcome, KeypadRefusal, KeypadTableError, Machine, MachineError,
    MachineEvent, RelockReason, SessionEnd, TableUpdate,
};
use opkey_protocol::AccessType;
use opkey_protocol::api::{KeypadCard, KeypadHolder, KeypadRollingPin, KeypadStaticPin, KeypadTable};
use opkey_protocol::ble::revocation::{REVOKED_ENTIRELY, Revocation};
use opkey_protocol::encoding::b64;
use opkey_protocol::model::RollingPinInfo;
use opkey_protocol::pin::{KeypadSlot, PinAlgorithm, PinSeed, PinSpec, rolling_pin};
use time::OffsetDateTime;

pub const PERSONAL_SEED: &[u8] = b"the personal key's rolling seed!";
pub const POOL_SEED: &[u8] = b"the pool key's rolling pin seed!";
pub const STATIC_PIN: &str = "48291375";
pub const CARD: &str = "04A1B2C3D4E5";
pub const OLD_CARD: &str = "04FFEEDDCC";
pub const POOL_KEY: &str = "key_pppppppppppppppp";
pub const STATIC_KEY: &str = "key_ssssssssssssssss";
pub const CARD_KEY: &str = "key_cccccccccccccccc";
pub const OLD_CARD_KEY: &str = "key_oooooooooooooooo";
pub const STATIC_OPERATOR: &str = "opr_ssssssssssssssss";
pub const PERSONAL_SLOT: u16 = 7;
pub const POOL_SLOT: u16 = 8;

pub fn spec() -> PinSpec {
    PinSpec {
        algorithm: PinAlgorithm::Sha256,
        digits: 6,
        period_s: 60,
    }
}

pub fn holder(
    key_id: &str,
    operator_id: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> KeypadHolder {
    KeypadHolder {
        key_id: key_id.into(),
        operator_id: operator_id.map(Into::into),
        serial: 1,
        valid_from: from,
        valid_to: to,
    }
}

fn rolling(
    key_id: &str,
    operator_id: Option<&str>,
    slot: u16,
    seed: &[u8],
    from: u64,
    to: u64,
) -> KeypadRollingPin {
    let spec = spec();
    KeypadRollingPin {
        holder: holder(key_id, operator_id, at(from), at(to)),
        pin: RollingPinInfo {
            slot: KeypadSlot::new(slot).unwrap(),
            algorithm: spec.algorithm,
            digits: spec.digits,
            period_s: spec.period_s,
        },
        seed: b64(seed),
    }
}

/// A table for `machine_id` valid around `t0`: a personal and a non-personal Rolling PIN
/// key, a personal Static PIN, a non-personal key card and an expired IPAF card.
pub fn table_for(machine_id: &str, version: u64, t0: u64) -> KeypadTable {
    KeypadTable {
        machine_id: machine_id.into(),
        version,
        rolling_pins: vec![
            rolling(
                KEY,
                Some(OPERATOR),
                PERSONAL_SLOT,
                PERSONAL_SEED,
                t0 - DAY,
                t0 + DAY,
            ),
            rolling(POOL_KEY, None, POOL_SLOT, POOL_SEED, t0 - DAY, t0 + DAY),
        ],
        static_pins: vec![KeypadStaticPin {
            holder: holder(STATIC_KEY, Some(STATIC_OPERATOR), at(t0 - DAY), at(t0 + DAY)),
            static_pin: STATIC_PIN.into(),
        }],
        cards: vec![
            KeypadCard {
                holder: holder(CARD_KEY, None, at(t0 - DAY), at(t0 + DAY)),
                access_type: AccessType::KeyCard,
                card_id: CARD.into(),
            },
            KeypadCard {
                holder: holder(OLD_CARD_KEY, None, at(t0 - 3 * DAY), at(t0 - DAY)),
                access_type: AccessType::IpafCard,
                card_id: OLD_CARD.into(),
            },
        ],
    }
}

pub fn table(version: u64) -> KeypadTable {
    table_for(MACHINE, version, T0)
}

/// What the phone of the key in `slot` shows at `unix`.
pub fn pin_at(seed: &[u8], slot: u16, unix: u64) -> String {
    let seed = PinSeed::new(seed.to_vec()).unwrap();
    rolling_pin(&seed, &spec(), KeypadSlot::new(slot).unwrap(), unix as i64)
        .pin
        .to_string()
}

fn personal_pin(unix: u64) -> String {
    pin_at(PERSONAL_SEED, PERSONAL_SLOT, unix)
}

fn keypad_site() -> Site {
    let mut site = Site::new();
    site.keypad = Some(table(1));
    site
}

fn enter(machine: &mut Machine, typed: &str, unix: u64) -> KeypadOutcome {
    machine.keypad_entry(typed, at(unix)).unwrap().outcome
}

fn card(machine: &mut Machine, id: &str, unix: u64) -> KeypadOutcome {
    machine.present_card(id, at(unix)).unwrap().outcome
}

fn refused(reason: KeypadRefusal) -> KeypadOutcome {
    KeypadOutcome::Refused(reason)
}

fn accepted_key(outcome: &KeypadOutcome) -> &str {
    match outcome {
        KeypadOutcome::Accepted(a) => &a.key_id,
        other => panic!("not accepted: {other:?}"),
    }
}

/// A PIN with the same slot that is certainly not the key's at `unix` (±1 step).
fn wrong_pin(unix: u64) -> String {
    let window: Vec<String> = (0..3).map(|i| personal_pin(unix - 60 + i * 60)).collect();
    (0..1000u32)
        .map(|n| format!("{:03}{:06}", PERSONAL_SLOT, 123_457 + n))
        .find(|p| !window.contains(p))
        .unwrap()
}

#[test]
fn a_rolling_pin_is_accepted_one_step_either_side_and_refused_two_steps_away() {
    let site = keypad_site();
    let mut machine = site.start();
    let step = 60;
    assert_eq!(
        enter(&mut machine, &personal_pin(T0 - 2 * step), T0),
        refused(KeypadRefusal::WrongPin)
    );
    assert_eq!(
        enter(&mut machine, &personal_pin(T0 + 2 * step), T0),
        refused(KeypadRefusal::WrongPin)
    );
    assert_eq!(
        accepted_key(&enter(&mut machine, &personal_pin(T0 - step), T0)),
        KEY
    );
    assert_eq!(accepted_key(&enter(&mut machine, &personal_pin(T0), T0 + 1)), KEY);
    assert_eq!(
        accepted_key(&enter(&mut machine, &personal_pin(T0 + step), T0 + 2)),
        KEY
    );
    // Typed with the grouping a phone shows.
    let grouped = personal_pin(T0 + 2 * step);
    let grouped = format!("{} {}-{}", &grouped[..3], &grouped[3..6], &grouped[6..]);
    assert_eq!(accepted_key(&enter(&mut machine, &grouped, T0 + 2 * step)), KEY);
}

#[test]
fn a_rolling_pin_is_good_once_and_never_for_an_earlier_step() {
    let site = keypad_site();
    let mut machine = site.start();
    let pin = personal_pin(T0);
    assert_eq!(accepted_key(&enter(&mut machine, &pin, T0)), KEY);
    assert_eq!(
        enter(&mut machine, &pin, T0 + 5),
        refused(KeypadRefusal::AlreadyUsed)
    );
    assert_eq!(
        enter(&mut machine, &personal_pin(T0 - 60), T0 + 5),
        refused(KeypadRefusal::AlreadyUsed),
        "a step before the last accepted one"
    );
    // Another key's PIN of the same step is its own.
    assert_eq!(
        accepted_key(&enter(&mut machine, &pin_at(POOL_SEED, POOL_SLOT, T0), T0 + 6)),
        POOL_KEY
    );
    // The refusal survives a restart: the last step is persisted.
    drop(machine);
    let mut machine = site.start();
    assert_eq!(
        enter(&mut machine, &pin, T0 + 7),
        refused(KeypadRefusal::AlreadyUsed)
    );
    assert_eq!(
        accepted_key(&enter(&mut machine, &personal_pin(T0 + 60), T0 + 60)),
        KEY
    );
}

#[test]
fn a_key_is_refused_outside_its_from_and_to() {
    let mut site = Site::new();
    let mut t = table(1);
    t.rolling_pins[0].holder.valid_from = at(T0 + 3600);
    t.rolling_pins[0].holder.valid_to = at(T0 + 7200);
    site.keypad = Some(t);
    let mut machine = site.start();
    assert_eq!(
        enter(&mut machine, &personal_pin(T0), T0),
        refused(KeypadRefusal::NotYetValid)
    );
    assert_eq!(
        accepted_key(&enter(&mut machine, &personal_pin(T0 + 3600), T0 + 3600)),
        KEY
    );
    assert_eq!(
        enter(&mut machine, &personal_pin(T0 + 7200), T0 + 7200),
        refused(KeypadRefusal::Expired),
        "To is exclusive"
    );
    // A right PIN for a key out of its window is no guess: it never counts.
    assert_eq!(machine.keypad().state().throttle.failures, 0);
}

#[test]
fn a_key_withdrawn_by_the_revocation_list_is_refused_on_the_keypad_and_card_reader() {
    let site = keypad_site();
    let mut machine = site.start();
    let list = site.issuer.revocations(
        MACHINE,
        1,
        T0,
        vec![
            Revocation {
                key_id: KEY.into(),
                min_serial: 2, // the keypad holds serial 1
            },
            Revocation {
                key_id: CARD_KEY.into(),
                min_serial: REVOKED_ENTIRELY,
            },
        ],
    );
    assert!(machine.apply_revocations(list.as_bytes()).unwrap().kept);
    assert_eq!(
        enter(&mut machine, &personal_pin(T0), T0),
        refused(KeypadRefusal::Revoked)
    );
    assert_eq!(card(&mut machine, CARD, T0), refused(KeypadRefusal::Revoked));
    assert_eq!(
        accepted_key(&enter(&mut machine, &pin_at(POOL_SEED, POOL_SLOT, T0), T0)),
        POOL_KEY
    );
    assert_eq!(machine.usage().open_session().unwrap().key_id, POOL_KEY);
}

#[test]
fn static_pins_open_for_their_key_and_anything_else_is_a_wrong_pin() {
    let site = keypad_site();
    let mut machine = site.start();
    let reply = machine.keypad_entry(STATIC_PIN, at(T0)).unwrap();
    assert_eq!(
        reply.outcome,
        KeypadOutcome::Accepted(KeypadAccess {
            key_id: STATIC_KEY.into(),
            operator_id: Some(STATIC_OPERATOR.into()),
            access_type: AccessType::StaticPin,
            usage_session: 1,
        })
    );
    assert_eq!(
        enter(&mut machine, "48291376", T0 + 1),
        refused(KeypadRefusal::WrongPin)
    );
    assert_eq!(
        enter(&mut machine, "4829137", T0 + 2),
        refused(KeypadRefusal::WrongPin),
        "a prefix of a Static PIN is not it"
    );
    assert_eq!(
        enter(&mut machine, "12", T0 + 3),
        refused(KeypadRefusal::Malformed)
    );
    assert_eq!(
        enter(&mut machine, "12ab", T0 + 3),
        refused(KeypadRefusal::Malformed)
    );
    assert_eq!(
        enter(&mut machine, "496123456", T0 + 3),
        refused(KeypadRefusal::Malformed)
    );
    assert_eq!(
        enter(&mut machine, "499123456", T0 + 3),
        refused(KeypadRefusal::Malformed)
    );
    assert_eq!(
        machine.keypad().state().throttle.failures,
        2,
        "malformed entries are not guesses"
    );
    // A Static PIN can be used again (it does not roll).
    assert_eq!(accepted_key(&enter(&mut machine, STATIC_PIN, T0 + 4)), STATIC_KEY);
}

#[test]
fn cards_open_for_their_key_unless_unknown_or_expired() {
    let site = keypad_site();
    let mut machine = site.start();
    let reply = machine.present_card(CARD, at(T0)).unwrap();
    assert_eq!(
        reply.outcome,
        KeypadOutcome::Accepted(KeypadAccess {
            key_id: CARD_KEY.into(),
            operator_id: None,
            access_type: AccessType::KeyCard,
            usage_session: 1,
        })
    );
    assert_eq!(
        accepted_key(&card(&mut machine, " 04a1b2c3d4e5 ", T0 + 1)),
        CARD_KEY,
        "a card id is read case-insensitively"
    );
    assert_eq!(
        card(&mut machine, "04A1B2C3D4E6", T0 + 2),
        refused(KeypadRefusal::UnknownCard)
    );
    assert_eq!(
        card(&mut machine, OLD_CARD, T0 + 3),
        refused(KeypadRefusal::Expired)
    );
    assert_eq!(
        card(&mut machine, "  ", T0 + 4),
        refused(KeypadRefusal::Malformed)
    );
    assert_eq!(machine.keypad().state().throttle.failures, 1);
}

#[test]
fn an_accepted_entry_drives_the_relay_and_usage_log_like_a_ble_unlock() {
    let site = keypad_site();
    let mut machine = site.start();

    // A BLE unlock first: session 1. The keypad continues the same numbering.
    assert_eq!(
        site.unlock(&mut machine, site.full(), at(T0)).phone,
        unlocked(1, 120)
    );
    let reply = machine.keypad_entry(&personal_pin(T0 + 10), at(T0 + 10)).unwrap();
    assert_eq!(
        reply.events,
        [MachineEvent::Unlocked {
            key_id: KEY.into(),
            operator_id: Some(OPERATOR.into()),
            usage_session: 2,
            relock_after_s: 120,
        }]
    );
    assert!(machine.relay().is_on());
    let sessions = machine.usage().sessions();
    assert_eq!(sessions[0].ended_by, Some(SessionEnd::NextUnlock));
    assert_eq!(
        (sessions[1].key_id.as_str(), sessions[1].operator_id.as_deref()),
        (KEY, Some(OPERATOR)),
        "a personal key logs who entered"
    );

    // Not started in time: auto-relock, as after a BLE unlock.
    assert_eq!(
        machine.tick(at(T0 + 130)).unwrap(),
        [MachineEvent::Relocked {
            reason: RelockReason::Timeout,
            usage_session: Some(2),
        }]
    );

    // A non-personal key logs the key only.
    let reply = machine
        .keypad_entry(&pin_at(POOL_SEED, POOL_SLOT, T0 + 200), at(T0 + 200))
        .unwrap();
    assert!(matches!(
        &reply.outcome,
        KeypadOutcome::Accepted(KeypadAccess { key_id, operator_id: None, access_type: AccessType::RollingPin, usage_session: 3 })
            if key_id == POOL_KEY
    ));
    machine.start_engine().unwrap();
    machine.stop_engine(at(T0 + 900)).unwrap();
    let session = machine.usage().sessions().last().unwrap().clone();
    assert_eq!(
        (
            session.usage_session,
            session.key_id.as_str(),
            session.operator_id,
            session.ended_by
        ),
        (3, POOL_KEY, None, Some(SessionEnd::EngineStopped))
    );

    // The next BLE unlock does not reuse a number the keypad took.
    assert_eq!(
        site.unlock(&mut machine, site.cached(), at(T0 + 1000)).phone,
        unlocked(4, 120)
    );
    // A refused entry moves nothing.
    site.lock(&mut machine, at(T0 + 1001));
    let reply = machine
        .keypad_entry(&wrong_pin(T0 + 1002), at(T0 + 1002))
        .unwrap();
    assert!(reply.events.is_empty());
    assert!(!machine.relay().is_on());
}

#[test]
fn wrong_entries_lock_the_keypad_out_for_longer_and_longer_even_across_restarts() {
    let site = keypad_site();
    let mut machine = site.start();
    let mut t = T0;
    // Three wrong entries are free.
    for _ in 0..3 {
        assert_eq!(
            enter(&mut machine, &wrong_pin(t), t),
            refused(KeypadRefusal::WrongPin)
        );
        assert_eq!(machine.keypad_locked_out_for(at(t)), None);
        t += 1;
    }
    // The fourth locks for 30 s; the fifth for 60 s; the sixth for 120 s.
    for lockout in [30, 60, 120] {
        assert_eq!(
            enter(&mut machine, &wrong_pin(t), t),
            refused(KeypadRefusal::WrongPin)
        );
        assert_eq!(machine.keypad_locked_out_for(at(t)), Some(lockout));
        // Everything is refused alike meanwhile, even the right PIN, even a card.
        assert_eq!(
            enter(&mut machine, &personal_pin(t + 10), t + 10),
            refused(KeypadRefusal::LockedOut {
                retry_after_s: lockout - 10
            })
        );
        assert_eq!(
            enter(&mut machine, STATIC_PIN, t + 11),
            refused(KeypadRefusal::LockedOut {
                retry_after_s: lockout - 11
            })
        );
        assert_eq!(
            card(&mut machine, CARD, t + 12),
            refused(KeypadRefusal::LockedOut {
                retry_after_s: lockout - 12
            })
        );
        assert!(!machine.relay().is_on());
        t += lockout;
    }
    // The seventh would lock for 240 s; locked, then a power cut.
    assert_eq!(
        enter(&mut machine, &wrong_pin(t), t),
        refused(KeypadRefusal::WrongPin)
    );
    drop(machine);
    let mut machine = site.start();
    assert_eq!(
        enter(&mut machine, &personal_pin(t + 40), t + 40),
        refused(KeypadRefusal::LockedOut { retry_after_s: 200 }),
        "a restart does not lift a lockout"
    );
    // A clock set back does not shorten it either.
    assert_eq!(
        enter(&mut machine, &personal_pin(t - 1000), t - 1000),
        refused(KeypadRefusal::LockedOut { retry_after_s: 240 })
    );
    t -= 1000;
    // After it, a right entry is accepted and the count starts again.
    t += 240;
    assert_eq!(accepted_key(&enter(&mut machine, STATIC_PIN, t)), STATIC_KEY);
    assert_eq!(machine.keypad().state().throttle.failures, 0);
    for _ in 0..3 {
        assert_eq!(
            enter(&mut machine, &wrong_pin(t), t),
            refused(KeypadRefusal::WrongPin)
        );
    }
    assert_eq!(machine.keypad_locked_out_for(at(t)), None);
    assert_eq!(card(&mut machine, "0000", t), refused(KeypadRefusal::UnknownCard));
    assert_eq!(
        machine.keypad_locked_out_for(at(t)),
        Some(30),
        "unknown cards count too"
    );
}

#[test]
fn lockouts_grow_to_fifteen_minutes_and_stop_there() {
    let site = keypad_site();
    let mut machine = site.start();
    let mut t = T0;
    let mut seen = Vec::new();
    for _ in 0..11 {
        enter(&mut machine, "99999999", t);
        let lockout = machine.keypad_locked_out_for(at(t)).unwrap_or(0);
        seen.push(lockout);
        t += lockout;
    }
    assert_eq!(seen, [0, 0, 0, 30, 60, 120, 240, 480, 900, 900, 900]);
}

#[test]
fn the_lockout_and_the_table_persist_in_a_file_readable_by_the_unit_only() {
    let site = keypad_site();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let open = || site.start_on(Box::new(FileStore::new(&state))).unwrap();
    let mut machine = open();
    for i in 0..4 {
        enter(&mut machine, "99999999", T0 + i);
    }
    assert_eq!(machine.keypad_locked_out_for(at(T0 + 3)), Some(30));
    drop(machine);
    let machine = open();
    assert_eq!(machine.keypad_locked_out_for(at(T0 + 13)), Some(20));
    assert_eq!(machine.keypad_table_version(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the state file holds PIN seeds");
    }
}

#[test]
fn an_older_table_is_ignored_and_a_bad_one_refused_whole() {
    let site = keypad_site();
    let mut machine = site.start();
    assert_eq!(machine.keypad_table_version(), 1);

    // Version 3 drops the Static PIN.
    let mut v3 = table(3);
    v3.static_pins.clear();
    assert_eq!(
        machine.apply_keypad_table(v3).unwrap(),
        TableUpdate::Replaced { version: 3 }
    );
    assert_eq!(
        enter(&mut machine, STATIC_PIN, T0),
        refused(KeypadRefusal::WrongPin)
    );

    // An older one (say, a stale bundle) changes nothing, nor does the same version.
    assert_eq!(
        machine.apply_keypad_table(table(2)).unwrap(),
        TableUpdate::Ignored { offered: 2, held: 3 }
    );
    assert_eq!(
        machine.apply_keypad_table(table(3)).unwrap(),
        TableUpdate::Ignored { offered: 3, held: 3 }
    );
    drop(machine);
    // Restarting on the original bundle (version 1) keeps version 3.
    let mut machine = site.start();
    assert_eq!(machine.keypad_table_version(), 3);
    assert_eq!(
        enter(&mut machine, STATIC_PIN, T0 + 1),
        refused(KeypadRefusal::WrongPin)
    );

    // Bad tables are refused whole, with a typed reason; the one held stays.
    let bad = |f: &dyn Fn(&mut KeypadTable)| {
        let mut t = table(9);
        f(&mut t);
        t
    };
    type Expected = fn(&KeypadTableError) -> bool;
    let cases: Vec<(KeypadTable, Expected)> = vec![
        (bad(&|t| t.rolling_pins[0].seed = "not base64!".into()), |e| {
            matches!(e, KeypadTableError::BadSeed { .. })
        }),
        (bad(&|t| t.rolling_pins[0].seed = String::new()), |e| {
            matches!(e, KeypadTableError::BadSeed { .. })
        }),
        (bad(&|t| t.rolling_pins[0].pin.digits = 5), |e| {
            matches!(e, KeypadTableError::BadSpec { .. })
        }),
        (bad(&|t| t.rolling_pins[0].pin.period_s = 10), |e| {
            matches!(e, KeypadTableError::BadSpec { .. })
        }),
        (
            bad(&|t| t.rolling_pins[1].pin.slot = t.rolling_pins[0].pin.slot),
            |e| matches!(e, KeypadTableError::DuplicateSlot { .. }),
        ),
        (bad(&|t| t.static_pins[0].static_pin = "12a4".into()), |e| {
            matches!(e, KeypadTableError::BadStaticPin { .. })
        }),
        (
            bad(&|t| {
                let copy = t.static_pins[0].clone();
                t.static_pins.push(copy);
            }),
            |e| matches!(e, KeypadTableError::DuplicateStaticPin { .. }),
        ),
        (
            bad(&|t| t.cards[1].card_id = t.cards[0].card_id.to_lowercase()),
            |e| matches!(e, KeypadTableError::DuplicateCard { .. }),
        ),
        (bad(&|t| t.cards[0].access_type = AccessType::RollingPin), |e| {
            matches!(e, KeypadTableError::BadCard { .. })
        }),
        (bad(&|t| t.machine_id = "mch_other".into()), |e| {
            matches!(e, KeypadTableError::OtherMachine { .. })
        }),
    ];
    for (table, expected) in cases {
        match machine.apply_keypad_table(table) {
            Err(MachineError::KeypadTable(e)) => {
                assert!(expected(&e), "{e:?}");
                assert!(!e.to_string().contains("not base64!"));
            }
            other => panic!("accepted a bad table: {other:?}"),
        }
        assert_eq!(machine.keypad_table_version(), 3);
    }
    assert_eq!(
        accepted_key(&enter(&mut machine, &personal_pin(T0 + 2), T0 + 2)),
        KEY
    );
}

#[test]
fn a_bad_table_in_the_bundle_stops_the_machine_with_a_typed_error() {
    let mut site = Site::new();
    let mut t = table(1);
    t.rolling_pins[0].pin.digits = 11;
    site.keypad = Some(t);
    let error = site.start_on(Box::new(site.store.clone())).unwrap_err();
    assert!(
        matches!(error, MachineError::KeypadTable(KeypadTableError::BadSpec { .. })),
        "{error:?}"
    );
}

#[test]
fn a_machine_without_a_table_refuses_every_entry_as_such() {
    let site = Site::new();
    let mut machine = site.start();
    assert_eq!(
        enter(&mut machine, &personal_pin(T0), T0),
        refused(KeypadRefusal::NoKeypadTable)
    );
    assert_eq!(
        card(&mut machine, CARD, T0),
        refused(KeypadRefusal::NoKeypadTable)
    );
    assert_eq!(machine.keypad_table_version(), 0);
    assert_eq!(
        machine.apply_keypad_table(table(1)).unwrap(),
        TableUpdate::Replaced { version: 1 }
    );
    assert_eq!(accepted_key(&enter(&mut machine, &personal_pin(T0), T0)), KEY);
}

#[test]
fn no_seed_or_pin_shows_in_debug_output_errors_or_answers() {
    let site = keypad_site();
    let mut machine = site.start();
    let pin = personal_pin(T0);
    let outcomes = [
        enter(&mut machine, &pin, T0),
        enter(&mut machine, &pin, T0 + 1),
        enter(&mut machine, STATIC_PIN, T0 + 2),
        enter(&mut machine, "48291370", T0 + 3),
        card(&mut machine, CARD, T0 + 4),
    ];
    let mut texts: Vec<String> = outcomes
        .iter()
        .flat_map(|o| [format!("{o:?}"), o.to_string(), o.to_json_line()])
        .collect();
    texts.push(format!("{machine:?}"));
    texts.push(format!("{:?}", machine.keypad()));
    texts.push(format!("{:?}", machine.keypad().state()));
    texts.push(format!("{:?}", site.store.saved().unwrap()));
    texts.push(format!("{:?}", KeypadState::default()));
    let mut bad = table(2);
    bad.rolling_pins[0].pin.digits = 4;
    texts.push(format!("{:?}", machine.apply_keypad_table(bad).unwrap_err()));
    let secrets = [
        b64(PERSONAL_SEED),
        b64(POOL_SEED),
        STATIC_PIN.to_owned(),
        pin.clone(),
        pin[3..].to_owned(),
        "48291370".to_owned(),
    ];
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret:?} in {text}");
        }
    }
}
