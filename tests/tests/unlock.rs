//! Digital Key unlocks end to end: grants from the real backend, the real core on the
//! phone, and the real machine unit serving the local socket transport on loopback.
//! Usage reaches the backend once; revocations and edits reach an offline machine through
//! whichever phone talks to it next.

use opkey_core::{CancelToken, DenyReason, UnlockError, UnlockOutcome, UnlockReport};
use opkey_e2e::{Backend, MachineUnit, Phone};
use opkey_machine::{MachineEvent, SessionEnd};
use opkey_protocol::Clock;
use opkey_protocol::api::{EditKey, UsageEventKind};
use opkey_protocol::{AccessType, Key, SystemClock};
use time::Duration;

/// An enrolled, synced phone of a new operator holding a Digital Key for `machine`.
async fn operator_with_key(
    backend: &Backend,
    name: &str,
    phone_number: &str,
    machine: &MachineUnit,
) -> (String, Key, Phone) {
    let (op, invitation) = backend.invited_operator(name, phone_number).await;
    let key = backend
        .personal_key(&op.operator.id, machine.id(), AccessType::DigitalKey, 30)
        .await;
    let phone = Phone::new();
    phone.core.redeem_invite(&invitation.link).await.expect("redeem");
    phone.core.sync().await.expect("first sync");
    (op.operator.id, key, phone)
}

async fn unlock(phone: &Phone, machine: &MachineUnit) -> Result<UnlockReport, UnlockError> {
    phone
        .core
        .unlock(machine.id(), machine.radio(), &CancelToken::new())
        .await
}

async fn lock(phone: &Phone, machine: &MachineUnit) -> UnlockReport {
    phone
        .core
        .lock(machine.id(), machine.radio(), &CancelToken::new())
        .await
        .expect("the machine answers a lock")
}

fn denied(report: &UnlockReport) -> Option<DenyReason> {
    match report.outcome {
        UnlockOutcome::Denied { reason } => Some(reason),
        _ => None,
    }
}

#[tokio::test]
async fn an_operator_unlocks_cold_then_warm_and_the_usage_reaches_the_backend_once() {
    let backend = Backend::start().await;
    let excavator = backend.registered_machine("Excavator EX-210").await;
    let (ola, key, phone) = operator_with_key(&backend, "Ola Nordmann", "+47 412 20 001", &excavator).await;

    let cold = unlock(&phone, &excavator).await.expect("cold unlock");
    let UnlockOutcome::Unlocked {
        relock_after_s,
        usage_session,
    } = cold.outcome
    else {
        panic!("refused: {cold:?}");
    };
    assert_eq!(relock_after_s, 120);
    assert!(cold.full_grant_sent, "the machine had never seen the grant");
    assert_eq!((cold.round_trips, cold.key_id.as_str()), (1, key.id.as_str()));
    assert!(excavator.unit().relay().is_on());

    // The operator drives off and parks: the machine records the session.
    {
        let mut unit = excavator.unit();
        unit.start_engine().expect("the relay is on");
        unit.stop_engine(SystemClock.now()).expect("engine stops");
        let session = unit.usage().sessions().last().cloned().expect("a session");
        assert_eq!(session.usage_session, usage_session);
        assert_eq!(session.key_id, key.id);
        assert_eq!(session.operator_id.as_deref(), Some(ola.as_str()));
        assert_eq!(session.ended_by, Some(SessionEnd::EngineStopped));
        assert!(session.ended_at.is_some_and(|end| end >= session.started_at));
        assert!(!unit.relay().is_on());
    }

    let warm = unlock(&phone, &excavator).await.expect("warm unlock");
    assert!(matches!(warm.outcome, UnlockOutcome::Unlocked { .. }), "{warm:?}");
    assert!(!warm.full_grant_sent, "the machine kept the verified grant");
    assert!(
        warm.bytes_sent + 150 < cold.bytes_sent,
        "warm {} B vs cold {} B",
        warm.bytes_sent,
        cold.bytes_sent
    );
    let locked = lock(&phone, &excavator).await;
    assert!(
        matches!(locked.outcome, UnlockOutcome::Locked { .. }),
        "{locked:?}"
    );
    assert!(!excavator.unit().relay().is_on());
    assert!(
        excavator
            .events()
            .iter()
            .any(|e| matches!(e, MachineEvent::Relocked { .. })),
        "{:?}",
        excavator.events()
    );

    let report = phone.core.sync().await.expect("sync uploads");
    assert_eq!(report.events_uploaded, 3);
    let events = backend
        .admin
        .events(Some(excavator.id()), None)
        .await
        .expect("events");
    let outcomes: Vec<(&str, UsageEventKind)> = events
        .iter()
        .map(|v| (v.event.outcome.as_str(), v.event.kind))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("unlocked", UsageEventKind::UnlockAttempt),
            ("unlocked", UsageEventKind::UnlockAttempt),
            ("locked", UsageEventKind::LockAttempt),
        ]
    );
    assert!(events.iter().all(|v| v.operator_id == ola));
    assert_eq!(events[0].event.usage_session, Some(usage_session));
    assert_eq!(events[0].event.id, cold.event_id);

    let again = phone.core.sync().await.expect("second sync");
    assert_eq!(again.events_uploaded, 0, "uploaded once");
    assert_eq!(backend.admin.events(None, Some(&ola)).await.unwrap().len(), 3);
}

#[tokio::test]
async fn revoked_grant_is_refused_by_the_offline_machine_once_a_different_phone_carries_the_list() {
    let backend = Backend::start().await;
    let telehandler = backend.registered_machine("Telehandler TH-14").await;
    let (_, ola_key, ola) = operator_with_key(&backend, "Ola Nordmann", "+47 412 20 011", &telehandler).await;
    let (_, _, kari) = operator_with_key(&backend, "Kari Lunde", "+47 412 20 012", &telehandler).await;

    let first = unlock(&ola, &telehandler).await.expect("Ola unlocks");
    assert!(
        matches!(first.outcome, UnlockOutcome::Unlocked { .. }),
        "{first:?}"
    );
    lock(&ola, &telehandler).await;

    backend.admin.delete_key(&ola_key.id).await.expect("key deleted");
    // The machine is offline: Kari's phone syncs and carries the new list on her unlock.
    kari.core.sync().await.expect("Kari syncs");
    assert_eq!(telehandler.unit().state().revocation_sequence, 0);
    let carried = unlock(&kari, &telehandler).await.expect("Kari unlocks");
    assert!(
        matches!(carried.outcome, UnlockOutcome::Unlocked { .. }),
        "{carried:?}"
    );
    assert!(
        telehandler.unit().state().revocation_sequence > 0,
        "the list arrived"
    );
    lock(&kari, &telehandler).await;

    // Ola's phone has not synced: it still holds a grant valid for days.
    let stale = unlock(&ola, &telehandler).await.expect("the machine answers");
    assert_eq!(denied(&stale), Some(DenyReason::Revoked), "{stale:?}");
    assert!(!telehandler.unit().relay().is_on());

    // Once it syncs, the phone itself refuses, before any radio.
    ola.core.sync().await.expect("Ola syncs");
    let err = unlock(&ola, &telehandler).await.unwrap_err();
    assert!(err.is_before_radio(), "{err:?}");
    assert!(matches!(err, UnlockError::NotInScope { .. }), "{err:?}");

    ola.core.sync().await.expect("uploads");
    let outcomes: Vec<String> = backend
        .admin
        .events(Some(telehandler.id()), None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.event.outcome)
        .collect();
    assert!(outcomes.iter().any(|o| o == "denied:revoked"), "{outcomes:?}");
}

#[tokio::test]
async fn an_edited_keys_older_grant_is_refused_once_the_list_arrives() {
    let backend = Backend::start().await;
    let lift = backend.registered_machine("Scissor lift SL-8").await;
    let (_, ola_key, ola) = operator_with_key(&backend, "Ola Nordmann", "+47 412 20 021", &lift).await;
    let (_, _, kari) = operator_with_key(&backend, "Kari Lunde", "+47 412 20 022", &lift).await;

    let cold = unlock(&ola, &lift).await.expect("Ola unlocks");
    assert!(cold.full_grant_sent);
    lock(&ola, &lift).await;

    let edited = backend
        .admin
        .edit_key(
            &ola_key.id,
            &EditKey {
                valid_to: Some(ola_key.validity.valid_to - Duration::days(10)),
                description: Some("Hire shortened".into()),
            },
        )
        .await
        .expect("key edited");
    assert_eq!(edited.version, ola_key.version + 1);

    kari.core.sync().await.expect("Kari syncs");
    let carried = unlock(&kari, &lift).await.expect("Kari unlocks");
    assert!(
        matches!(carried.outcome, UnlockOutcome::Unlocked { .. }),
        "{carried:?}"
    );
    lock(&kari, &lift).await;

    // The grant of version 1 is cached on the machine, but the list now refuses it.
    let stale = unlock(&ola, &lift).await.expect("the machine answers");
    assert_eq!(denied(&stale), Some(DenyReason::Revoked), "{stale:?}");
    assert!(!lift.unit().relay().is_on());

    // After a sync the phone holds the grant of the new version, which opens the machine.
    ola.core.sync().await.expect("Ola syncs");
    let renewed = unlock(&ola, &lift).await.expect("unlock with the new grant");
    assert!(
        matches!(renewed.outcome, UnlockOutcome::Unlocked { .. }),
        "{renewed:?}"
    );
    assert!(renewed.full_grant_sent, "a new grant goes in full");
}

#[tokio::test]
async fn a_machine_that_is_not_running_is_not_in_range_and_the_attempt_is_still_recorded() {
    let backend = Backend::start().await;
    let excavator = backend.registered_machine("Excavator EX-210").await;
    let (_, _, phone) = operator_with_key(&backend, "Ola Nordmann", "+47 412 20 031", &excavator).await;
    let radio = excavator.radio();
    let id = excavator.id().to_owned();
    drop(excavator);
    tokio::task::yield_now().await;
    let err = phone
        .core
        .unlock(&id, radio, &CancelToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, UnlockError::NotInRange { .. }), "{err:?}");
    let outbox = phone.core.usage_events().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].event.outcome, "not-in-range");
}
