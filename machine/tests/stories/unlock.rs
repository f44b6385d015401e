//! Unlocks and refusals through the link interface.

use crate::support::*;
use opkey_machine::MachineEvent;
use opkey_protocol::ble::messages::ErrorMessage;
use opkey_protocol::ble::revocation::{REVOKED_ENTIRELY, Revocation};
use opkey_protocol::ble::{Command, PhoneUnlock, ReasonCode, UnlockOutcome, fragment};

/// Fragments of a cold request at MTU 23 (PROTOCOL.md 2.9).
const COLD_WRITES_AT_MTU_23: usize = 19;

#[test]
fn a_cold_then_a_warm_unlock_at_mtu_23_turn_the_relay_on_and_name_the_operator() {
    let site = Site::new();
    let mut machine = site.start();
    assert!(!machine.relay().is_on(), "the relay is off until someone unlocks");

    let cold = site.unlock(&mut machine, site.full(), at(T0));
    assert_eq!(cold.phone, unlocked(1, 120));
    assert_eq!(
        cold.events,
        [MachineEvent::Unlocked {
            key_id: KEY.into(),
            operator_id: Some(OPERATOR.into()),
            usage_session: 1,
            relock_after_s: 120,
        }]
    );
    assert_eq!(
        cold.request.len(),
        COLD_WRITES_AT_MTU_23,
        "a cold request at MTU 23 (PROTOCOL.md 2.9, with this site's ids)"
    );
    assert!(machine.relay().is_on());
    assert_eq!(machine.relay().relock_at(), Some(at(T0 + 120)));
    let session = machine.usage().open_session().unwrap();
    assert_eq!(
        (
            session.usage_session,
            session.key_id.as_str(),
            session.operator_id.as_deref()
        ),
        (1, KEY, Some(OPERATOR))
    );
    assert_eq!(
        (session.machine_id.as_str(), session.started_at),
        (MACHINE, at(T0))
    );

    let warm = site.unlock(&mut machine, site.cached(), at(T0 + 30));
    assert_eq!(warm.phone, unlocked(2, 120));
    assert!(
        warm.request.len() < cold.request.len(),
        "a warm unlock sends a key id, not the grant"
    );
    assert_eq!(
        machine.relay().relock_at(),
        Some(at(T0 + 150)),
        "a new unlock restarts the countdown"
    );
    let sessions = machine.usage().sessions();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[0].ended_at,
        Some(at(T0 + 30)),
        "the next unlock ends the open session"
    );
}

#[test]
fn a_non_personal_key_unlocks_with_no_operator_in_the_log() {
    let mut site = Site::new();
    let mut body =
        opkey_protocol::ble::test_support::grant_body(KEY, &site.phone, &[MACHINE], T0 - 60, T0 + DAY);
    body.personal = false;
    site.grant = site.issuer.grant(body);
    let mut machine = site.start();
    let attempt = site.unlock(&mut machine, site.full(), at(T0));
    assert!(matches!(
        &attempt.events[..],
        [MachineEvent::Unlocked {
            operator_id: None,
            ..
        }]
    ));
    assert_eq!(machine.usage().sessions()[0].operator_id, None);
}

#[test]
fn an_unknown_cached_key_is_answered_unknown_grant_and_the_full_grant_works_after_a_hello_request() {
    let site = Site::new();
    let mut machine = site.start();
    let mut link = machine.connect();
    let hello = link.on_subscribe(&mut machine, at(T0)).unwrap();
    let warm = site.answer(
        &mut machine,
        &mut link,
        &hello.fragments,
        site.params(Command::Unlock, site.cached()),
        at(T0),
    );
    assert_eq!(warm.phone, Ok(UnlockOutcome::UnknownGrant));
    assert_eq!(warm.events, [MachineEvent::Denied(ReasonCode::UnknownGrant)]);
    assert!(!machine.relay().is_on());

    // Same connection: ask for a fresh Hello, then send the whole grant.
    let request = fragment(&PhoneUnlock::hello_request(), link.att_mtu()).unwrap();
    let (hello, events) = write_all(&mut machine, &mut link, &request, at(T0 + 1));
    assert!(events.is_empty());
    let cold = site.answer(
        &mut machine,
        &mut link,
        &hello,
        site.params(Command::Unlock, site.full()),
        at(T0 + 1),
    );
    assert_eq!(cold.phone, unlocked(1, 120));
    assert!(machine.relay().is_on());
}

#[test]
fn a_replayed_request_on_a_new_connection_is_denied_and_the_relay_does_not_move() {
    let site = Site::new();
    let mut machine = site.start();
    let captured = site.unlock(&mut machine, site.full(), at(T0)).request;
    machine.tick(at(T0 + 120)).unwrap();
    assert!(!machine.relay().is_on());
    let log = machine.usage().clone();

    // An attacker replays the captured writes after a fresh Hello on its own connection…
    let mut replay = machine.connect();
    replay.on_subscribe(&mut machine, at(T0 + 121)).unwrap();
    let (reply, events) = write_all(&mut machine, &mut replay, &captured, at(T0 + 121));
    assert_eq!(events, [MachineEvent::Denied(ReasonCode::BadCiphertext)]);
    assert_eq!(
        ErrorMessage::decode(&reassemble(&reply)).unwrap().code,
        ReasonCode::BadCiphertext
    );
    // … and with no Hello at all.
    let (_, events) = write_all(&mut machine, &mut replay, &captured, at(T0 + 122));
    assert_eq!(events, [MachineEvent::Denied(ReasonCode::StaleChallenge)]);

    assert!(!machine.relay().is_on());
    assert_eq!(machine.usage(), &log, "a refused request records nothing");
}

#[test]
fn a_second_central_can_neither_spend_nor_kill_the_first_centrals_challenge() {
    let site = Site::new();
    let mut machine = site.start();
    let mut phone = machine.connect();
    let hello = phone.on_subscribe(&mut machine, at(T0)).unwrap();

    let mut intruder = machine.connect();
    let (_, events) = write_all(&mut machine, &mut intruder, &[vec![0xC0, 0, 2, 1, 2]], at(T0));
    assert_eq!(events, [MachineEvent::Denied(ReasonCode::StaleChallenge)]);
    let (_, events) = write_all(&mut machine, &mut intruder, &[vec![0x01]], at(T0));
    assert_eq!(events, [MachineEvent::Denied(ReasonCode::Malformed)]);
    intruder.on_disconnect(&mut machine);

    let attempt = site.answer(
        &mut machine,
        &mut phone,
        &hello.fragments,
        site.params(Command::Unlock, site.full()),
        at(T0 + 1),
    );
    assert_eq!(attempt.phone, unlocked(1, 120));
}

#[test]
fn garbled_fragments_are_answered_malformed_and_spend_the_challenge() {
    let site = Site::new();
    let mut machine = site.start();
    let mut link = machine.connect();
    let hello = link.on_subscribe(&mut machine, at(T0)).unwrap();

    let (reply, events) = write_all(&mut machine, &mut link, &[vec![0x05, 1, 2, 3]], at(T0));
    assert_eq!(events, [MachineEvent::Denied(ReasonCode::Malformed)]);
    assert_eq!(
        ErrorMessage::decode(&reassemble(&reply)).unwrap().code,
        ReasonCode::Malformed
    );

    let late = site.answer(
        &mut machine,
        &mut link,
        &hello.fragments,
        site.params(Command::Unlock, site.full()),
        at(T0),
    );
    assert_eq!(late.phone, Ok(UnlockOutcome::Denied(ReasonCode::StaleChallenge)));
    assert!(!machine.relay().is_on());
}

#[test]
fn a_key_revoked_by_the_backend_is_refused_by_the_offline_machine() {
    let site = Site::new();
    let mut machine = site.start();
    assert_eq!(
        site.unlock(&mut machine, site.full(), at(T0)).phone,
        unlocked(1, 120)
    );
    machine.tick(at(T0 + 120)).unwrap();

    let list = site.issuer.revocations(
        MACHINE,
        1,
        T0 + 200,
        vec![Revocation {
            key_id: KEY.into(),
            min_serial: REVOKED_ENTIRELY,
        }],
    );
    assert!(machine.apply_revocations(list.as_bytes()).unwrap().kept);

    let warm = site.unlock(&mut machine, site.cached(), at(T0 + 300));
    assert_eq!(warm.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));
    assert_eq!(warm.events, [MachineEvent::Denied(ReasonCode::Revoked)]);
    assert!(!machine.relay().is_on());
}

#[test]
fn a_link_below_the_minimum_mtu_is_refused() {
    let site = Site::new();
    let mut machine = site.start();
    let mut link = machine.connect();
    assert_eq!(link.att_mtu(), 23);
    assert!(link.set_att_mtu(22).is_err());
    link.set_att_mtu(185).unwrap();
    let hello = link.on_subscribe(&mut machine, at(T0)).unwrap();
    assert_eq!(
        hello.fragments.len(),
        1,
        "a 170-byte Hello is one notification at MTU 185"
    );
}
