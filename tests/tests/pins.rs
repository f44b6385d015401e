//! Rolling PINs, Static PINs and cards end to end: keys and seeds from the real backend,
//! the PIN read on the real core after sync (offline), and the real machine unit's keypad
//! and card reader with the table from its provisioning bundle.

use opkey_e2e::{Backend, MachineUnit, Phone};
use opkey_machine::{KeypadOutcome, KeypadRefusal, TableUpdate};
use opkey_protocol::{AccessType, Clock, Key, SystemClock};
use time::Duration;

/// An enrolled, synced phone of a new operator holding a personal key of `access_type`
/// for `machine`.
async fn operator_with(
    backend: &Backend,
    name: &str,
    phone_number: &str,
    machine: &MachineUnit,
    access_type: AccessType,
) -> (String, Key, Phone) {
    let (op, invitation) = backend.invited_operator(name, phone_number).await;
    let key = backend
        .personal_key(&op.operator.id, machine.id(), access_type, 30)
        .await;
    let phone = Phone::new();
    phone.core.redeem_invite(&invitation.link).await.expect("redeem");
    phone.core.sync().await.expect("first sync");
    (op.operator.id, key, phone)
}

/// The unit takes the keypad table of its current provisioning bundle, as a unit does
/// when it refreshes it from the backend.
async fn refresh_keypad(backend: &Backend, machine: &MachineUnit) {
    let bundle = backend
        .admin
        .machine_provisioning(machine.id())
        .await
        .expect("bundle");
    let table = bundle
        .keypad
        .expect("a keypad machine's bundle carries its table");
    let update = machine
        .unit()
        .apply_keypad_table(table)
        .expect("the table is good");
    assert!(matches!(update, TableUpdate::Replaced { .. }), "{update:?}");
}

fn type_on_keypad(machine: &MachineUnit, typed: &str) -> KeypadOutcome {
    machine
        .unit()
        .keypad_entry(typed, SystemClock.now())
        .expect("the keypad answers")
        .outcome
}

#[tokio::test]
async fn a_rolling_pin_read_offline_opens_the_keypad_once_and_names_the_operator() {
    let backend = Backend::start().await;
    let loader = backend.registered_machine("Wheel loader WL-5").await;
    let (ola, key, phone) = operator_with(
        &backend,
        "Ola Nordmann",
        "+47 412 30 001",
        &loader,
        AccessType::RollingPin,
    )
    .await;
    let info = key
        .rolling_pin
        .expect("a rolling PIN key has a slot and settings");
    assert_eq!((info.slot.get(), info.digits, info.period_s), (1, 6, 60));
    refresh_keypad(&backend, &loader).await;

    // No network from here: the phone reads the PIN from its own store.
    drop(backend);
    let view = phone.core.pin(&key.id).expect("the PIN shows offline");
    assert_eq!(view.pin.len(), 3 + 6);
    assert!(view.pin.starts_with("001"), "slot prefix first");
    assert!(view.seconds_left <= 60 && view.clock_warning.is_none());

    match type_on_keypad(&loader, &view.pin) {
        KeypadOutcome::Accepted(access) => {
            assert_eq!(access.key_id, key.id);
            assert_eq!(access.operator_id.as_deref(), Some(ola.as_str()));
            assert_eq!(access.access_type, AccessType::RollingPin);
        }
        refused => panic!("the keypad refused the phone's PIN: {refused:?}"),
    }
    assert!(loader.unit().relay().is_on());
    let session = loader
        .unit()
        .usage()
        .open_session()
        .cloned()
        .expect("a usage session");
    assert_eq!(
        (session.key_id.as_str(), session.operator_id.as_deref()),
        (key.id.as_str(), Some(ola.as_str()))
    );

    // Seen over a shoulder, the same PIN is dead.
    assert_eq!(
        type_on_keypad(&loader, &view.pin),
        KeypadOutcome::Refused(KeypadRefusal::AlreadyUsed)
    );
}

#[tokio::test]
async fn a_revoked_rolling_pin_is_refused_by_a_keypad_that_learned_it_from_another_phone() {
    let backend = Backend::start().await;
    let dumper = backend.registered_machine("Dumper D-30").await;
    let (_, pin_key, pin_phone) = operator_with(
        &backend,
        "Kari Nordmann",
        "+47 412 30 002",
        &dumper,
        AccessType::RollingPin,
    )
    .await;
    refresh_keypad(&backend, &dumper).await;
    let pin = pin_phone.core.pin(&pin_key.id).expect("PIN").pin;

    // The admin revokes the PIN key; the machine gets no new table (it is offline), but
    // a Digital Key holder's phone syncs and then unlocks it, carrying the list along.
    backend.admin.revoke_key(&pin_key.id).await.expect("revoked");
    let (_, _, courier) = operator_with(
        &backend,
        "Per Hansen",
        "+47 412 30 003",
        &dumper,
        AccessType::DigitalKey,
    )
    .await;
    let cancel = opkey_core::CancelToken::new();
    courier
        .core
        .unlock(dumper.id(), dumper.radio(), &cancel)
        .await
        .expect("the courier's unlock");
    assert!(dumper.unit().relay().is_on());
    courier
        .core
        .lock(dumper.id(), dumper.radio(), &cancel)
        .await
        .expect("the courier's lock");
    assert!(!dumper.unit().relay().is_on());

    assert_eq!(
        type_on_keypad(&dumper, &pin),
        KeypadOutcome::Refused(KeypadRefusal::Revoked)
    );
    assert!(!dumper.unit().relay().is_on());
}

#[tokio::test]
async fn static_pins_and_cards_are_shown_on_the_phone_and_open_the_machine() {
    let backend = Backend::start().await;
    let lift = backend.registered_machine("Scissor lift SL-12").await;
    let (_, static_key, phone) = operator_with(
        &backend,
        "Nils Berg",
        "+47 412 30 004",
        &lift,
        AccessType::StaticPin,
    )
    .await;
    let card_key = backend
        .personal_key(
            static_key.operator_id.as_deref().expect("personal"),
            lift.id(),
            AccessType::IpafCard,
            30,
        )
        .await;
    phone.core.sync().await.expect("sync");
    refresh_keypad(&backend, &lift).await;

    let shown = phone
        .core
        .static_pin(&static_key.id)
        .expect("a personal static PIN shows");
    let admin_view = backend
        .admin
        .static_pin(&static_key.id)
        .await
        .expect("admin view");
    assert_eq!(shown.pin, admin_view.static_pin);

    let keys = phone.core.keys().expect("keys");
    let card = keys
        .iter()
        .find(|k| k.id == card_key.id)
        .expect("the card is listed");
    assert_eq!(card.access_type, AccessType::IpafCard);
    assert_eq!(card.card_id, card_key.card_id);
    assert!(matches!(
        phone.core.pin(&card_key.id),
        Err(opkey_core::PinError::NotRollingPin { .. })
    ));

    assert!(matches!(
        type_on_keypad(&lift, &shown.pin),
        KeypadOutcome::Accepted(ref a) if a.key_id == static_key.id
    ));
    let card_id = card_key.card_id.clone().expect("a card id");
    let outcome = lift
        .unit()
        .present_card(&card_id, SystemClock.now() + Duration::seconds(1))
        .expect("the reader answers")
        .outcome;
    assert!(
        matches!(outcome, KeypadOutcome::Accepted(ref a) if a.key_id == card_key.id),
        "{outcome:?}"
    );

    // A revoked card leaves the reader with the next table.
    backend.admin.revoke_key(&card_key.id).await.expect("revoked");
    refresh_keypad(&backend, &lift).await;
    let outcome = lift
        .unit()
        .present_card(&card_id, SystemClock.now())
        .expect("the reader answers")
        .outcome;
    assert_eq!(outcome, KeypadOutcome::Refused(KeypadRefusal::UnknownCard));
}
