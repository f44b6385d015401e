//! Stories of the Digital Key unlock: the phone core, the simulated radio and the
//! `opkey-machine` unit.

use super::*;
use crate::sim::*;
use fake::OPERATOR;
use opkey_core::{
    BleTransport, CancelToken, DenyReason, KeyState, LinkConditions, MachineCommand, SocketTransport,
    TransportError, UnlockError, UnlockOutcome, UsageEventKind,
};
use opkey_machine::MachineEvent;
use opkey_protocol::ble::revocation::{REVOKED_ENTIRELY, Revocation};
use opkey_protocol::ble::test_support::TestMachine;
use std::time::Duration as StdDuration;
use time::Duration;

fn unlocked(session: u32) -> UnlockOutcome {
    UnlockOutcome::Unlocked {
        relock_after_s: 120,
        usage_session: session,
    }
}

#[tokio::test]
async fn a_cold_then_a_warm_unlock_work_at_the_smallest_and_a_common_mtu() {
    for mtu in [23u16, 185] {
        let site = Site::new().await;
        site.transport.set_conditions(LinkConditions {
            att_mtu: mtu,
            ..LinkConditions::default()
        });
        assert!(!site.relay_on());

        let cold = site.unlock().await.unwrap();
        assert_eq!(cold.outcome, unlocked(1), "mtu {mtu}");
        assert_eq!((cold.machine_id.as_str(), cold.key_id.as_str()), (M1, K1));
        assert_eq!(cold.command, MachineCommand::Unlock);
        assert!(cold.full_grant_sent, "the machine has not seen the grant yet");
        assert_eq!((cold.round_trips, cold.connect_attempts), (1, 1));
        assert!(site.relay_on());

        let warm = site.unlock().await.unwrap();
        assert_eq!(warm.outcome, unlocked(2), "mtu {mtu}");
        assert!(
            !warm.full_grant_sent,
            "the machine cached the grant: the key id is enough"
        );
        assert_eq!(warm.round_trips, 1);
        assert!(warm.bytes_sent < cold.bytes_sent, "{warm:?} vs {cold:?}");
        let stats = site.transport.stats();
        if mtu == 23 {
            // PROTOCOL.md 2.9: a cold request is 19 writes at MTU 23, a warm one 9.
            assert_eq!(stats.writes, 19 + 9, "{stats:?}");
        } else {
            // At MTU 185 a cold request is 2 writes, a warm one 1.
            assert_eq!(stats.writes, 2 + 1, "{stats:?}");
        }
        site.assert_links_closed();
        assert_eq!(site.signatures(), 2 + 2, "redeem + session, then one per unlock");
    }
}

#[tokio::test]
async fn locking_turns_the_relay_off_and_is_recorded_as_a_lock_attempt() {
    let site = Site::new().await;
    site.unlock().await.unwrap();
    let lock = site.lock().await.unwrap();
    assert_eq!(lock.outcome, UnlockOutcome::Locked { usage_session: 2 });
    assert!(!site.relay_on());
    let kinds: Vec<UsageEventKind> = site.outbox().into_iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        [UsageEventKind::UnlockAttempt, UsageEventKind::LockAttempt]
    );
}

#[tokio::test]
async fn an_expired_key_is_refused_before_any_radio_traffic() {
    let site = Site::new().await;
    site.fake.put_key(
        K1,
        OPERATOR,
        &[M1],
        T0 - Duration::days(10),
        T0 - Duration::days(1),
    );
    site.op.sync().await.unwrap();
    let err = site.unlock().await.unwrap_err();
    assert_eq!(
        err,
        UnlockError::NoUsableKey {
            machine_id: M1.into(),
            key_id: K1.into(),
            state: KeyState::Expired
        }
    );
    assert!(err.is_before_radio());
    assert_eq!(site.transport.stats().scans, 0, "no radio traffic");
    let events = site.outbox();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.outcome, "no-usable-key");
    assert_eq!(events[0].event.key_id.as_deref(), Some(K1));
}

#[tokio::test]
async fn a_machine_none_of_the_keys_names_is_out_of_scope() {
    let site = Site::new().await;
    let err = site
        .op
        .unlock("mch_somebody_elses_01", site.radio(), &CancelToken::new())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        UnlockError::NotInScope {
            machine_id: "mch_somebody_elses_01".into()
        }
    );
    assert_eq!(site.transport.stats().scans, 0);
    assert_eq!(site.outbox()[0].event.key_id, None);
}

#[tokio::test]
async fn a_grant_that_ran_out_asks_for_a_sync_before_any_radio_traffic() {
    let site = Site::new().await;
    site.fake.put_key(
        K1,
        OPERATOR,
        &[M1],
        T0 - Duration::days(1),
        T0 + Duration::days(30),
    );
    site.fake
        .issue_grant(K1, OPERATOR, &[M1], t0() - 2 * DAY, t0() - 1, 2);
    site.op.sync().await.unwrap();
    let err = site.unlock().await.unwrap_err();
    assert!(matches!(err, UnlockError::GrantExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("sync"), "{err}");
    assert_eq!(site.transport.stats().scans, 0);
}

#[tokio::test]
async fn a_machine_that_does_not_advertise_is_not_in_range() {
    let site = Site::new().await;
    site.transport.set_in_range(&site.peripheral_id, false);
    let err = site.unlock().await.unwrap_err();
    assert_eq!(
        err,
        UnlockError::NotInRange {
            machine_id: M1.into()
        }
    );
    let stats = site.transport.stats();
    assert_eq!((stats.scans, stats.connect_calls), (1, 0));
    assert_eq!(site.outbox()[0].event.outcome, "not-in-range");
}

#[tokio::test]
async fn bluetooth_off_and_a_missing_permission_are_told_apart() {
    let site = Site::new().await;
    site.transport.fail_scans_with(Some(TransportError::BluetoothOff));
    assert_eq!(site.unlock().await.unwrap_err(), UnlockError::BluetoothOff);
    site.transport
        .fail_scans_with(Some(TransportError::PermissionMissing));
    assert_eq!(site.unlock().await.unwrap_err(), UnlockError::PermissionMissing);
    site.transport.fail_scans_with(None);
    assert_eq!(site.unlock().await.unwrap().outcome, unlocked(1));
    let outcomes: Vec<String> = site.outbox().into_iter().map(|e| e.event.outcome).collect();
    assert_eq!(outcomes, ["bluetooth-off", "permission-missing", "unlocked"]);
}

#[tokio::test]
async fn gatt_error_133_on_the_first_connect_is_retried() {
    let site = Site::new().await;
    site.transport
        .fail_next_connect(TransportError::Gatt { status: 133 });
    let report = site.unlock().await.unwrap();
    assert_eq!(report.outcome, unlocked(1));
    assert_eq!(report.connect_attempts, 2);
    assert_eq!(site.transport.stats().connect_calls, 2);
    site.assert_links_closed();

    // Three failures in a row exhaust the attempts.
    for _ in 0..3 {
        site.transport
            .fail_next_connect(TransportError::Gatt { status: 133 });
    }
    let err = site.unlock().await.unwrap_err();
    assert!(matches!(err, UnlockError::Bluetooth { .. }), "{err:?}");
    assert_eq!(site.transport.stats().connect_calls, 5);
}

#[tokio::test]
async fn the_connection_is_closed_when_the_link_drops_mid_exchange() {
    let site = Site::new().await;
    site.transport.set_conditions(LinkConditions {
        att_mtu: 23,
        disconnect_after_fragments: Some(12),
        ..LinkConditions::default()
    });
    let err = site.unlock().await.unwrap_err();
    assert_eq!(err, UnlockError::Disconnected);
    assert!(!site.relay_on());
    assert_eq!(site.transport.stats().forced_disconnects, 1);
    site.assert_links_closed();
}

#[tokio::test]
async fn a_lost_answer_times_out_and_the_connection_is_closed() {
    let site = Site::new().await;
    site.transport.set_conditions(LinkConditions {
        drop_probability: 1.0,
        ..LinkConditions::default()
    });
    assert_eq!(site.unlock().await.unwrap_err(), UnlockError::TimedOut);
    site.assert_links_closed();
    assert_eq!(site.outbox()[0].event.outcome, "timed-out");
}

#[tokio::test]
async fn cancelling_mid_exchange_stops_promptly_and_closes_the_connection() {
    let site = Site::new().await;
    site.transport.set_conditions(LinkConditions {
        att_mtu: 23,
        latency: StdDuration::from_millis(50),
        ..LinkConditions::default()
    });
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(StdDuration::from_millis(200)).await;
            cancel.cancel();
        }
    };
    let started = std::time::Instant::now();
    let (answer, ()) = tokio::join!(site.op.unlock(M1, site.radio(), &cancel), canceller);
    assert_eq!(answer.unwrap_err(), UnlockError::Cancelled);
    assert!(
        started.elapsed() < StdDuration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(site.transport.stats().connections, 1);
    site.assert_links_closed();
    assert_eq!(site.outbox()[0].event.outcome, "cancelled");
}

#[tokio::test]
async fn dropping_the_unlock_mid_exchange_still_closes_the_connection() {
    let site = Site::new().await;
    site.transport.set_conditions(LinkConditions {
        latency: StdDuration::from_millis(100),
        ..LinkConditions::default()
    });
    let dropped = tokio::time::timeout(StdDuration::from_millis(250), site.unlock()).await;
    assert!(dropped.is_err(), "the unlock should still be running");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert_eq!(site.transport.stats().connections, 1);
    site.assert_links_closed();
}

#[tokio::test]
async fn a_fake_machine_is_found_out_and_the_phone_signs_nothing_for_it() {
    let site = Site::new().await;
    site.transport.set_in_range(&site.peripheral_id, false);
    // Same id, its own key: not the key the phone synced for M1.
    let impostor = TestMachine::new(M1);
    site.transport
        .add_peripheral(Box::new(SimMachine::new(start_machine(
            &impostor,
            &site.issuer,
            None,
        ))));
    let signed_before = site.signatures();
    let err = site.unlock().await.unwrap_err();
    assert_eq!(
        err,
        UnlockError::FakeMachine {
            machine_id: M1.into()
        }
    );
    assert_eq!(site.signatures(), signed_before, "nothing was signed for it");
    assert_eq!(site.transport.stats().writes, 0, "nothing was sent to it");
    site.assert_links_closed();
    assert_eq!(site.outbox()[0].event.outcome, "fake-machine");
}

#[tokio::test]
async fn a_machine_that_lost_the_cached_grant_gets_the_full_grant_on_the_same_connection() {
    let site = Site::new().await;
    assert!(site.unlock().await.unwrap().full_grant_sent);
    assert!(!site.unlock().await.unwrap().full_grant_sent);

    // The unit was replaced (or its cache evicted the grant): it answers "unknown grant".
    *site.machine.lock().unwrap() = start_machine(&site.test_machine, &site.issuer, None);
    let report = site.unlock().await.unwrap();
    assert_eq!(report.outcome, unlocked(1));
    assert!(report.full_grant_sent);
    assert_eq!(report.round_trips, 3, "request, Hello request, request");
    assert_eq!(site.transport.stats().connections, 3, "one connection per unlock");

    // And the phone knows the machine holds it again.
    assert!(!site.unlock().await.unwrap().full_grant_sent);
    site.assert_links_closed();
}

#[tokio::test]
async fn a_key_revoked_by_the_machines_own_list_is_denied() {
    let issuer_list = |site: &Site| {
        site.issuer.revocations(
            M1,
            4,
            t0(),
            vec![Revocation {
                key_id: K1.into(),
                min_serial: REVOKED_ENTIRELY,
            }],
        )
    };
    // The machine got the list from the backend; the phone knows nothing of it.
    let site = Site::new().await;
    let list = issuer_list(&site);
    *site.machine.lock().unwrap() = start_machine(&site.test_machine, &site.issuer, Some(list.as_bytes()));
    let report = site.unlock().await.unwrap();
    assert_eq!(
        report.outcome,
        UnlockOutcome::Denied {
            reason: DenyReason::Revoked
        }
    );
    assert!(!site.relay_on());
    assert_eq!(site.outbox()[0].event.outcome, "denied:revoked");
    assert_eq!(
        site.machine_events.lock().unwrap().last(),
        Some(&MachineEvent::Denied(opkey_protocol::ble::ReasonCode::Revoked))
    );
}

#[tokio::test]
async fn the_phone_carries_its_newer_revocation_list_to_an_offline_machine() {
    let site = Site::new().await;
    // Another operator's key was revoked; the phone syncs the machine's new list.
    let list = site.issuer.revocations(
        M1,
        2,
        t0(),
        vec![Revocation {
            key_id: "key_someone_else_0001".into(),
            min_serial: REVOKED_ENTIRELY,
        }],
    );
    site.fake.publish_revocations(OPERATOR, &list);
    site.op.sync().await.unwrap();
    assert_eq!(site.machine.lock().unwrap().state().revocation_sequence, 0);

    assert_eq!(site.unlock().await.unwrap().outcome, unlocked(1));
    assert_eq!(
        site.machine.lock().unwrap().state().revocation_sequence,
        2,
        "the machine learned the list from the phone"
    );
}

#[tokio::test]
async fn a_corrupting_link_never_unlocks_wrongly_and_always_ends_typed_and_closed() {
    let site = Site::new().await;
    site.transport.set_conditions(LinkConditions {
        att_mtu: 23,
        corrupt_probability: 0.05,
        seed: 7,
        ..LinkConditions::default()
    });
    let mut unlocked_count = 0;
    for i in 0..20 {
        match site.unlock().await {
            Ok(report) => {
                if let UnlockOutcome::Unlocked { .. } = report.outcome {
                    unlocked_count += 1;
                }
            }
            // A damaged Hello reads as another or a fake machine, a damaged fragment as
            // an unreadable answer or a silence: all of them typed, none of them internal.
            Err(e) => assert!(
                matches!(
                    e,
                    UnlockError::BadAnswer { .. }
                        | UnlockError::TimedOut
                        | UnlockError::FakeMachine { .. }
                        | UnlockError::WrongMachine { .. }
                ),
                "attempt {i}: {e:?}"
            ),
        }
    }
    assert!(site.transport.stats().corrupted > 0);
    let machine_unlocks = site
        .machine_events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, MachineEvent::Unlocked { .. }))
        .count();
    assert!(
        unlocked_count <= machine_unlocks,
        "the phone reported an unlock the machine did not make"
    );
    site.assert_links_closed();
    assert_eq!(site.outbox().len(), 20, "every attempt is recorded");
}

#[tokio::test]
async fn an_unlock_through_the_local_socket_transport() {
    let site = Site::new().await;
    let machine = start_machine(&site.test_machine, &site.issuer, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(opkey_machine::socket::serve(
        listener,
        Arc::new(std::sync::Mutex::new(machine)),
        opkey_machine::socket::ServeOptions::new(site.phone.clock.clone()),
        Arc::new(|_| {}),
    ));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let socket: Arc<dyn BleTransport> = Arc::new(SocketTransport::new(vec![nobody, address]));
    let cold = site
        .op
        .unlock(M1, socket.clone(), &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(cold.outcome, unlocked(1));
    assert!(cold.full_grant_sent);
    let warm = site
        .op
        .unlock(M1, socket.clone(), &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(warm.outcome, unlocked(2));
    assert!(!warm.full_grant_sent);
    let lock = site.op.lock(M1, socket, &CancelToken::new()).await.unwrap();
    assert_eq!(lock.outcome, UnlockOutcome::Locked { usage_session: 3 });
    server.abort();
}
