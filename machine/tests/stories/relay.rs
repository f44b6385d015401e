//! The immobilizer relay: auto-relock, the engine, the lock command, and the usage log.

use crate::support::*;
use opkey_machine::{MachineError, MachineEvent, RelockReason, SessionEnd};
use opkey_protocol::ble::UnlockOutcome;

#[test]
fn an_unlocked_machine_relocks_by_itself_when_nobody_starts_it() {
    let site = Site::new();
    let mut machine = site.start();
    site.unlock(&mut machine, site.full(), at(T0));
    assert_eq!(machine.next_deadline(), Some(at(T0 + 120)));

    assert_eq!(machine.tick(at(T0 + 119)).unwrap(), []);
    assert!(machine.relay().is_on());
    assert_eq!(
        machine.tick(at(T0 + 120)).unwrap(),
        [MachineEvent::Relocked {
            reason: RelockReason::Timeout,
            usage_session: Some(1),
        }]
    );
    assert!(!machine.relay().is_on());
    assert_eq!(machine.next_deadline(), None);
    assert_eq!(machine.tick(at(T0 + 500)).unwrap(), [], "relocking happens once");

    let session = &machine.usage().sessions()[0];
    assert_eq!(session.started_at, at(T0));
    assert_eq!(session.ended_at, Some(at(T0 + 120)));
    assert_eq!(session.ended_by, Some(SessionEnd::Timeout));
}

#[test]
fn a_started_engine_keeps_the_relay_on_and_stopping_it_ends_the_session_and_relocks() {
    let site = Site::new();
    let mut machine = site.start();
    site.unlock(&mut machine, site.full(), at(T0));
    assert_eq!(
        machine.start_engine().unwrap(),
        [MachineEvent::EngineStarted {
            usage_session: Some(1)
        }]
    );
    assert_eq!(machine.next_deadline(), None);
    assert_eq!(machine.tick(at(T0 + 3600)).unwrap(), []);
    assert!(machine.relay().is_on() && machine.relay().engine_running());

    assert_eq!(
        machine.stop_engine(at(T0 + 7200)).unwrap(),
        [MachineEvent::Relocked {
            reason: RelockReason::EngineStopped,
            usage_session: Some(1),
        }]
    );
    assert!(!machine.relay().is_on() && !machine.relay().engine_running());
    let session = &machine.usage().sessions()[0];
    assert_eq!(
        (session.ended_at, session.ended_by),
        (Some(at(T0 + 7200)), Some(SessionEnd::EngineStopped))
    );
    assert_eq!(machine.stop_engine(at(T0 + 7201)).unwrap(), []);
}

#[test]
fn the_engine_cannot_start_while_the_machine_is_immobilized() {
    let site = Site::new();
    let mut machine = site.start();
    assert!(matches!(machine.start_engine(), Err(MachineError::Immobilized)));
    site.unlock(&mut machine, site.full(), at(T0));
    machine.tick(at(T0 + 120)).unwrap();
    assert!(matches!(machine.start_engine(), Err(MachineError::Immobilized)));
}

#[test]
fn the_lock_command_turns_the_relay_off_and_ends_the_session() {
    let site = Site::new();
    let mut machine = site.start();
    site.unlock(&mut machine, site.full(), at(T0));
    machine.start_engine().unwrap();

    let lock = site.lock(&mut machine, at(T0 + 60));
    assert_eq!(lock.phone, Ok(UnlockOutcome::Locked { usage_session: 2 }));
    assert_eq!(
        lock.events,
        [
            MachineEvent::Locked {
                key_id: KEY.into(),
                usage_session: 2,
            },
            MachineEvent::Relocked {
                reason: RelockReason::Command,
                usage_session: Some(1),
            },
        ]
    );
    assert!(!machine.relay().is_on() && !machine.relay().engine_running());
    let sessions = machine.usage().sessions();
    assert_eq!(sessions.len(), 1, "a lock ends a session, it does not open one");
    assert_eq!(sessions[0].ended_by, Some(SessionEnd::Command));

    // Locking a locked machine is accepted and moves nothing.
    let again = site.lock(&mut machine, at(T0 + 61));
    assert_eq!(
        again.events,
        [MachineEvent::Locked {
            key_id: KEY.into(),
            usage_session: 3,
        }]
    );
}

#[test]
fn status_lines_say_what_happened_in_words_a_script_can_match() {
    let unlocked = MachineEvent::Unlocked {
        key_id: KEY.into(),
        operator_id: Some(OPERATOR.into()),
        usage_session: 4,
        relock_after_s: 120,
    };
    assert_eq!(
        unlocked.to_string(),
        format!("unlocked key={KEY} session=4 operator={OPERATOR} relock_after=120s")
    );
    let relocked = MachineEvent::Relocked {
        reason: RelockReason::Timeout,
        usage_session: Some(4),
    };
    assert_eq!(relocked.to_string(), "relocked reason=timeout session=4");
    assert_eq!(
        MachineEvent::Denied(opkey_protocol::ble::ReasonCode::Revoked).to_string(),
        "denied code=24 reason=Revoked"
    );
}
