//! The apps' decisions on plain data: which screen, what blocks a key, what a failure asks.

use super::*;
use crate::config::CoreConfig;
use crate::secrets::MemorySecretStore;
use crate::store::StoreError;
use crate::views::MachineView;
use opkey_protocol::model::RollingPinInfo;
use opkey_protocol::pin::{KeypadSlot, PinAlgorithm};
use opkey_protocol::{Keypad, TelematicsUnit};
use std::sync::Arc;
use time::macros::datetime;

fn machine(id: &str) -> MachineView {
    MachineView {
        id: id.into(),
        name: format!("Machine {id}"),
        serial: format!("SN-{id}"),
        unit_type: TelematicsUnit::Tu700,
        keypad: Keypad::DualId,
    }
}

fn key(access_type: AccessType) -> KeyView {
    KeyView {
        id: "k1".into(),
        organization_id: "org".into(),
        organization_name: "Quarry Ltd".into(),
        access_type,
        personal: true,
        description: String::new(),
        valid_from: datetime!(2026-01-01 00:00 UTC),
        valid_to: datetime!(2027-01-01 00:00 UTC),
        version: 1,
        state: KeyState::Active,
        usable: true,
        machines: vec![machine("m1")],
        card_id: None,
        rolling_pin: (access_type == AccessType::RollingPin).then(|| RollingPinInfo {
            slot: KeypadSlot::new(7).unwrap(),
            algorithm: PinAlgorithm::Sha256,
            digits: 6,
            period_s: 60,
        }),
        pin_synced: true,
    }
}

fn status() -> Status {
    Status {
        enrolled: true,
        phone_id: Some("ph1".into()),
        operator: None,
        organizations: vec![],
        server_url: None,
        last_sync_at: Some(datetime!(2026-06-01 06:00 UTC)),
        server_offset_ms: Some(0),
        clock_warning: None,
        key_count: 3,
        usable_key_count: 3,
        cursor: 9,
        revoked: false,
        pending_invite: false,
    }
}

fn ready(k: &KeyView) -> KeyGuide {
    guide_key(k, BluetoothState::Ready, false, Some(0))
}

#[test]
fn each_access_type_has_its_action_and_says_how_to_use_it() {
    let cases = [
        (AccessType::DigitalKey, KeyAction::Unlock, "tap Unlock"),
        (
            AccessType::RollingPin,
            KeyAction::RollingPin,
            "keypad before the countdown ends",
        ),
        (AccessType::StaticPin, KeyAction::StaticPin, "personal PIN"),
        (AccessType::KeyCard, KeyAction::Card, "card reader"),
        (AccessType::PrimaryKeyCard, KeyAction::Card, "card reader"),
        (AccessType::IpafCard, KeyAction::Card, "card reader"),
    ];
    for (access_type, action, how) in cases {
        let g = ready(&key(access_type));
        assert_eq!((g.action, g.blocker), (action, None), "{access_type:?}");
        assert!(g.message.contains(how), "{access_type:?}: {}", g.message);
        assert_eq!(g.key_id, "k1");
    }
    let mut card = key(AccessType::IpafCard);
    card.card_id = Some("IPAF-123".into());
    assert_eq!(
        ready(&card).message,
        "Hold card IPAF-123 to the machine's card reader."
    );
    let mut two = key(AccessType::DigitalKey);
    two.machines.push(machine("m2"));
    assert!(
        ready(&two).message.contains("one of its 2 machines"),
        "{}",
        ready(&two).message
    );
}

#[test]
fn bluetooth_blocks_a_digital_key_only() {
    let states = [
        (BluetoothState::Off, Blocker::BluetoothOff),
        (
            BluetoothState::PermissionMissing,
            Blocker::BluetoothPermissionMissing,
        ),
        (BluetoothState::Unsupported, Blocker::BluetoothUnsupported),
    ];
    for (bluetooth, blocker) in states {
        let g = guide_key(&key(AccessType::DigitalKey), bluetooth, false, Some(0));
        assert_eq!(g.blocker, Some(blocker));
        assert_eq!(g.message, blocker.message());
        for other in [AccessType::RollingPin, AccessType::StaticPin, AccessType::KeyCard] {
            assert_eq!(
                guide_key(&key(other), bluetooth, false, Some(0)).blocker,
                None,
                "{other:?}"
            );
        }
    }
}

#[test]
fn the_key_state_comes_before_bluetooth_and_the_phone_before_the_key() {
    for (state, blocker) in [
        (KeyState::Upcoming, Blocker::KeyUpcoming),
        (KeyState::Expired, Blocker::KeyExpired),
        (KeyState::Revoked, Blocker::KeyRevoked),
    ] {
        let mut k = key(AccessType::DigitalKey);
        k.state = state;
        k.usable = false;
        assert_eq!(
            guide_key(&k, BluetoothState::Off, false, Some(0)).blocker,
            Some(blocker)
        );
        let mut pin = key(AccessType::RollingPin);
        pin.state = state;
        pin.pin_synced = false;
        assert_eq!(
            ready(&pin).blocker,
            Some(blocker),
            "an unusable key needs no sync first"
        );
        assert_eq!(
            guide_key(&k, BluetoothState::Off, true, Some(0)).blocker,
            Some(Blocker::PhoneRevoked)
        );
    }
}

#[test]
fn a_pin_key_without_its_secret_asks_for_one_sync_and_a_key_without_machines_says_so() {
    for access_type in [AccessType::RollingPin, AccessType::StaticPin] {
        let mut k = key(access_type);
        k.pin_synced = false;
        let g = ready(&k);
        assert_eq!(g.blocker, Some(Blocker::PinNotSynced));
        assert!(g.message.contains("sync once"), "{}", g.message);
    }
    let mut k = key(AccessType::DigitalKey);
    k.machines.clear();
    assert_eq!(ready(&k).blocker, Some(Blocker::NoMachine));
}

#[test]
fn a_rolling_pin_key_warns_when_the_clock_is_off_by_more_than_one_of_its_steps() {
    let k = key(AccessType::RollingPin);
    assert_eq!(
        guide_key(&k, BluetoothState::Ready, false, Some(59_000)).clock_warning,
        None
    );
    let warning = guide_key(&k, BluetoothState::Ready, false, Some(-61_000))
        .clock_warning
        .expect("61 s fast is beyond one 60 s step");
    assert!(warning.contains("61") && warning.contains("fast"), "{warning}");
    assert_eq!(
        guide_key(&k, BluetoothState::Ready, false, None).clock_warning,
        None
    );
    // The warning does not block: the PIN uses the server's time.
    assert_eq!(
        guide_key(&k, BluetoothState::Ready, false, Some(600_000)).blocker,
        None
    );
    assert_eq!(
        guide_key(
            &key(AccessType::DigitalKey),
            BluetoothState::Ready,
            false,
            Some(600_000)
        )
        .clock_warning,
        None
    );
}

#[test]
fn the_top_screen_follows_the_phone_state_in_order() {
    let mut s = status();
    let g = guide_home(&s, None, 2);
    assert_eq!(
        (g.stage, g.message.as_str()),
        (Stage::Keys, "3 keys ready to use.")
    );
    assert_eq!(
        (g.usage_events_waiting, g.key_count, g.usable_key_count),
        (2, 3, 3)
    );
    assert_eq!(g.last_sync_at, s.last_sync_at);

    s.usable_key_count = 1;
    assert_eq!(guide_home(&s, None, 0).message, "1 of 3 keys ready to use.");
    s.key_count = 1;
    assert_eq!(guide_home(&s, None, 0).message, "1 key ready to use.");
    s.key_count = 0;
    s.usable_key_count = 0;
    assert!(guide_home(&s, None, 0).message.starts_with("No keys yet"));

    let warning = Some("the phone clock is 5 min fast".to_owned());
    assert_eq!(guide_home(&s, warning.clone(), 0).clock_warning, warning);

    s.enrolled = false;
    assert_eq!(guide_home(&s, None, 0).stage, Stage::Welcome);
    s.revoked = true;
    assert_eq!(guide_home(&s, None, 0).stage, Stage::PhoneRevoked);
    s.pending_invite = true;
    assert_eq!(
        guide_home(&s, None, 0).stage,
        Stage::ResumeInvite,
        "a new invite being redeemed comes before the old revocation"
    );
}

#[test]
fn a_fresh_phone_welcomes_and_an_unknown_key_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let op = OpKey::open(
        CoreConfig::new(dir.path()),
        Arc::new(MemorySecretStore::new()),
        None,
        Arc::new(opkey_protocol::clock::ManualClock::new(
            datetime!(2026-06-01 06:00 UTC),
        )),
    )
    .unwrap();
    let g = op.home_guide().unwrap();
    assert_eq!(g.stage, Stage::Welcome);
    assert_eq!(
        (g.key_count, g.usage_events_waiting, g.clock_warning),
        (0, 0, None)
    );
    assert!(matches!(
        op.key_guide("nope", BluetoothState::Ready),
        Err(Error::KeyNotFound { id }) if id == "nope"
    ));
}

#[test]
fn unlock_failures_name_their_screen_and_whether_to_try_again() {
    let m = || "m1".to_owned();
    let k = || "k1".to_owned();
    let cases: Vec<(UnlockError, Option<Blocker>, bool)> = vec![
        (UnlockError::BluetoothOff, Some(Blocker::BluetoothOff), true),
        (
            UnlockError::PermissionMissing,
            Some(Blocker::BluetoothPermissionMissing),
            true,
        ),
        (
            UnlockError::NotInRange { machine_id: m() },
            Some(Blocker::MachineNotInRange),
            true,
        ),
        (UnlockError::PhoneRevoked, Some(Blocker::PhoneRevoked), false),
        (
            UnlockError::NoUsableKey {
                machine_id: m(),
                key_id: k(),
                state: KeyState::Expired,
            },
            Some(Blocker::KeyExpired),
            false,
        ),
        (UnlockError::TimedOut, None, true),
        (UnlockError::Disconnected, None, true),
        (UnlockError::WrongMachine { machine_id: m() }, None, true),
        (UnlockError::FakeMachine { machine_id: m() }, None, false),
        (
            UnlockError::GrantExpired {
                machine_id: m(),
                key_id: k(),
            },
            None,
            false,
        ),
        (UnlockError::NotInScope { machine_id: m() }, None, false),
        (UnlockError::NotEnrolled, None, false),
        (
            UnlockError::Signer(SignerError::KeyUnavailable {
                reason: "lock screen removed".into(),
            }),
            None,
            false,
        ),
        (UnlockError::Store(StoreError::Corrupt), None, false),
    ];
    for (error, blocker, retry) in cases {
        let g = UnlockErrorGuide::from(&error);
        assert_eq!((g.blocker, g.retry), (blocker, retry), "{error:?}");
        assert_eq!(g.message, error.to_string());
    }
}

#[test]
fn a_refusal_says_why_and_what_to_do() {
    let m = DenyReason::Revoked.message();
    assert!(m.starts_with("The machine refused: your key was revoked"), "{m}");
    assert!(m.ends_with("ask your fleet admin."), "{m}");
    assert!(DenyReason::StaleChallenge.message().ends_with("Try again."));
    assert!(DenyReason::Expired.message().contains("Sync to renew"));
}
