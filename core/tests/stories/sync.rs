use super::*;
use fake::{Fault, OPERATOR};
use opkey_core::{Error, KeyState, Status, SyncProgress};
use opkey_protocol::api::ErrorCode;
use opkey_protocol::clock::SkewedClock;
use opkey_protocol::{KeyState as _KS, SystemClock};
use std::sync::Mutex;
use time::Duration;

/// Ann holds k1 (Excavator) and k2 (Boom lift, Telehandler); Bob holds k9.
pub fn fleet(fake: &Fake) {
    fake.add_machine("m1", "Excavator");
    fake.add_machine("m2", "Telehandler");
    fake.add_machine("m3", "Boom lift");
    fake.put_key(
        "k1",
        OPERATOR,
        &["m1"],
        T0 - Duration::days(1),
        T0 + Duration::days(30),
    );
    fake.put_key(
        "k2",
        OPERATOR,
        &["m2", "m3"],
        T0 - Duration::days(1),
        T0 + Duration::days(30),
    );
    fake.put_key("k9", "op_bob", &["m1"], T0, T0 + Duration::days(1));
}

fn ids(op: &OpKey) -> Vec<String> {
    op.keys().unwrap().into_iter().map(|k| k.id).collect()
}

fn snapshot(op: &OpKey) -> (Vec<opkey_core::KeyView>, Status) {
    (op.keys().unwrap(), op.status().unwrap())
}

#[tokio::test]
async fn a_first_sync_brings_the_operators_keys_onto_the_phone() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    let report = op.sync().await.unwrap();
    assert_eq!((report.upserted, report.deleted, report.pages), (2, 0, 1));
    assert_eq!(report.cursor, 3);
    assert_eq!(report.server_offset_ms, 0);

    let keys = op.keys().unwrap();
    assert_eq!(
        ids(&op),
        ["k2", "k1"],
        "sorted by machine name: Boom lift before Excavator"
    );
    let k2 = &keys[0];
    assert_eq!(k2.organization_name, "Acme Rental");
    assert!(k2.personal && k2.usable);
    assert_eq!(k2.state, KeyState::Active);
    let names: Vec<&str> = k2.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Boom lift", "Telehandler"]);
    assert_eq!(k2.machines[0].serial, "SN-m3");

    let status = op.status().unwrap();
    assert_eq!(
        (status.key_count, status.usable_key_count, status.cursor),
        (2, 2, 3)
    );
    assert_eq!(status.last_sync_at, Some(T0));

    // Records serialize for the CLI, times as RFC 3339.
    let json = serde_json::to_value(&keys[1]).unwrap();
    assert_eq!(json["valid_to"], "2026-04-01T09:00:00Z");
    assert_eq!(json["access_type"], "digital-key");
    assert_eq!(json["state"], "active");
}

#[tokio::test]
async fn a_later_sync_applies_changes_and_deletions_and_drops_unused_machines() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();

    fake.delete_key("k1", OPERATOR);
    fake.add_machine("m4", "Dumper");
    fake.put_key(
        "k2",
        OPERATOR,
        &["m4"],
        T0 - Duration::days(1),
        T0 + Duration::days(60),
    );
    fake.put_key("k3", OPERATOR, &["m2"], T0, T0 + Duration::days(1));
    let report = op.sync().await.unwrap();
    assert_eq!((report.upserted, report.deleted), (2, 1));
    assert_eq!(ids(&op), ["k2", "k3"]);
    assert_eq!(op.key("k2").unwrap().machines[0].name, "Dumper");
    assert_eq!(op.key("k2").unwrap().valid_to, T0 + Duration::days(60));
    assert_eq!(op.key("k1").unwrap_err(), Error::KeyNotFound { id: "k1".into() });

    // Nothing changed: nothing to do.
    let report = op.sync().await.unwrap();
    assert_eq!((report.upserted, report.deleted, report.pages), (0, 0, 1));
}

#[tokio::test]
async fn many_pages_are_fetched_then_applied_together_with_progress() {
    let (fake, _phone, op) = enrolled().await;
    fake.add_machine("m1", "Excavator");
    for i in 0..7 {
        fake.put_key(&format!("k{i}"), OPERATOR, &["m1"], T0, T0 + Duration::days(1));
    }
    fake.with(|s| s.page_size = 3);
    let seen = Mutex::new(Vec::new());
    let report = op
        .sync_with_progress(&|p| seen.lock().unwrap().push(p))
        .await
        .unwrap();
    assert_eq!((report.upserted, report.pages, report.cursor), (7, 3, 7));
    assert_eq!(
        seen.into_inner().unwrap(),
        [
            SyncProgress::Fetching {
                page: 1,
                keys_so_far: 0
            },
            SyncProgress::Fetching {
                page: 2,
                keys_so_far: 3
            },
            SyncProgress::Fetching {
                page: 3,
                keys_so_far: 6
            },
            SyncProgress::Applying { keys: 7 },
        ]
    );
}

#[tokio::test]
async fn a_server_error_then_success_is_retried_transparently() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    fake.fault("/v1/sync", Fault::Status(500));
    fake.fault("/v1/sync", Fault::Code(503, ErrorCode::Internal));
    op.sync().await.unwrap();
    assert_eq!(fake.requests_to("/v1/sync").len(), 3);
    assert_eq!(ids(&op), ["k2", "k1"]);
}

/// Runs a sync that must fail and checks that the store is exactly as before.
async fn failed_sync_changes_nothing(setup: impl FnOnce(&Fake)) -> Error {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    fake.delete_key("k1", OPERATOR);
    fake.put_key("k5", OPERATOR, &["m1"], T0, T0 + Duration::days(2));
    let before = snapshot(&op);
    setup(&fake);
    let err = op.sync().await.unwrap_err();
    assert_eq!(snapshot(&op), before, "a failed sync changed the store ({err:?})");
    // ... and the next good sync still gets everything.
    fake.clear_faults();
    let report = op.sync().await.unwrap();
    assert_eq!((report.upserted, report.deleted), (1, 1));
    err
}

#[tokio::test]
async fn a_server_that_keeps_failing_leaves_the_keys_as_they_were() {
    let err = failed_sync_changes_nothing(|f| f.sticky_fault("/v1/sync", Fault::Status(500))).await;
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_answer_cut_off_mid_way_leaves_the_keys_as_they_were() {
    let err = failed_sync_changes_nothing(|f| f.sticky_fault("/v1/sync", Fault::CutBody)).await;
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn an_answer_that_is_not_json_leaves_the_keys_as_they_were() {
    let err = failed_sync_changes_nothing(|f| f.fault("/v1/sync", Fault::BadJson)).await;
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("nothing was changed on this phone"));
}

#[tokio::test]
async fn a_failure_on_a_later_page_discards_the_earlier_pages() {
    let err = failed_sync_changes_nothing(|f| {
        f.with(|s| s.page_size = 1);
        f.fault("/v1/sync", Fault::Hang(std::time::Duration::ZERO));
        f.sticky_fault("/v1/sync", Fault::Code(500, ErrorCode::Internal));
    })
    .await;
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let (fake, phone, _) = enrolled().await;
    let mut config = phone.config();
    config.request_timeout = std::time::Duration::from_millis(200);
    let op = phone.open_with(config);
    fake.sticky_fault(
        "/v1/session/challenge",
        Fault::Hang(std::time::Duration::from_secs(2)),
    );
    assert_eq!(op.sync().await.unwrap_err(), Error::Timeout);
}

#[tokio::test]
async fn an_unreachable_server_is_a_network_error_and_keys_still_work_offline() {
    let (fake, phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    drop(fake);
    let err = op.sync().await.unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err:?}");
    assert_eq!(op.keys().unwrap().len(), 2);
    drop(phone);
}

#[tokio::test]
async fn a_session_is_reused_until_it_expires_then_renewed() {
    let clock = manual(T0);
    let fake = Fake::start(clock.clone()).await;
    let phone = Phone::new(clock.clone());
    let op = phone.open();
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    op.sync().await.unwrap();
    op.sync().await.unwrap();
    assert_eq!(fake.with(|s| s.sessions_opened), 1);
    clock.advance(Duration::minutes(20));
    op.sync().await.unwrap();
    assert_eq!(fake.with(|s| s.sessions_opened), 2);
}

#[tokio::test]
async fn an_expired_session_is_replaced_once_and_the_sync_goes_on() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    fake.with(|s| s.tokens.clear()); // the server forgot every session
    fake.put_key("k5", OPERATOR, &["m1"], T0, T0 + Duration::days(2));
    assert_eq!(op.sync().await.unwrap().upserted, 1);
    assert_eq!(fake.with(|s| s.sessions_opened), 2);

    // A server that refuses every session is not asked forever.
    fake.sticky_fault("/v1/sync", Fault::Code(401, ErrorCode::SessionExpired));
    let err = op.sync().await.unwrap_err();
    assert!(matches!(
        err,
        Error::Server {
            code: Some(ErrorCode::SessionExpired),
            ..
        }
    ));
    assert_eq!(fake.with(|s| s.sessions_opened), 3);
}

#[tokio::test]
async fn a_refused_cursor_restarts_from_zero_and_replaces_everything() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    // The server compacted its log: k1 vanished without a deletion record.
    fake.compact_away("k1");
    fake.fault("/v1/sync", Fault::Code(400, ErrorCode::BadCursor));
    let report = op.sync().await.unwrap();
    assert_eq!((report.upserted, report.deleted), (1, 1));
    assert_eq!(ids(&op), ["k2"]);
    let cursors: Vec<String> = fake.with(|s| {
        s.requests
            .iter()
            .filter(|r| r.path == "/v1/sync")
            .map(|r| r.path.clone())
            .collect()
    });
    assert_eq!(cursors.len(), 3);
}

#[tokio::test]
async fn a_withdrawn_phone_loses_its_keys_and_is_told_to_ask_for_a_new_invite() {
    let (fake, phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    assert_eq!(op.keys().unwrap().len(), 2);

    fake.revoke_phones();
    let err = op.sync().await.unwrap_err();
    assert_eq!(err, Error::PhoneRevoked);
    assert!(err.to_string().contains("ask your fleet admin for a new invite"));
    assert!(op.keys().unwrap().is_empty());
    let status = op.status().unwrap();
    assert!(status.revoked && !status.enrolled);
    assert_eq!((status.key_count, status.cursor), (0, 0));

    // It stays that way across restarts, without asking the server again.
    drop(op);
    let op = phone.open();
    let asked = fake.requests_to("/").len();
    assert_eq!(op.sync().await.unwrap_err(), Error::PhoneRevoked);
    assert_eq!(fake.requests_to("/").len(), asked);

    // A new invite brings the phone back.
    let (link, _) = fake.invite(OPERATOR);
    op.redeem_invite(&link).await.unwrap();
    assert!(op.status().unwrap().enrolled);
    assert_eq!(op.sync().await.unwrap().upserted, 2);
}

#[tokio::test]
async fn a_phone_not_enrolled_has_nothing_to_sync() {
    let (_fake, phone) = backend_and_phone().await;
    assert_eq!(phone.open().sync().await.unwrap_err(), Error::NotEnrolled);
}

#[tokio::test]
async fn a_slow_phone_clock_is_measured_corrected_and_warned_about() {
    let server = manual(T0);
    let fake = Fake::start(server.clone()).await;
    // The phone's clock is 45 s behind the server's.
    let phone = Phone::new(manual(T0 - Duration::seconds(45)));
    let op = phone.open();
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    fleet(&fake);
    let report = op.sync().await.unwrap();
    assert_eq!(report.server_offset_ms, 45_000);
    assert_eq!(op.now(), T0);
    let status = op.status().unwrap();
    assert_eq!(status.server_offset_ms, Some(45_000));
    let warning = status.clock_warning.unwrap();
    assert!(
        warning.starts_with("This phone's clock is 45 s slow"),
        "{warning}"
    );

    // The correction is remembered across restarts.
    drop(op);
    assert_eq!(phone.open().now(), T0);
}

#[tokio::test]
async fn a_fast_phone_clock_on_real_time_is_measured_within_the_round_trip() {
    let fake = Fake::start(Arc::new(SystemClock)).await;
    let phone = Phone::new(Arc::new(SkewedClock {
        inner: SystemClock,
        offset: Duration::minutes(2),
    }));
    let op = phone.open();
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    let offset = op.sync().await.unwrap().server_offset_ms;
    assert!((offset + 120_000).abs() < 1_000, "{offset}");
    assert!(op.status().unwrap().clock_warning.unwrap().contains("120 s fast"));
    assert!((op.now() - OffsetDateTime::now_utc()).abs() < Duration::seconds(1));
}

#[tokio::test]
async fn a_small_clock_difference_raises_no_warning() {
    let fake = Fake::start(manual(T0)).await;
    let phone = Phone::new(manual(T0 + Duration::seconds(20)));
    let op = phone.open();
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    let status = op.status().unwrap();
    assert_eq!(status.server_offset_ms, Some(-20_000));
    assert_eq!(status.clock_warning, None);
}

#[tokio::test]
async fn expired_and_upcoming_keys_are_shown_but_not_usable_at_server_time() {
    let server = manual(T0);
    let fake = Fake::start(server.clone()).await;
    // The phone's clock is a day behind: by its own clock k-old would still be valid.
    let phone = Phone::new(manual(T0 - Duration::days(1)));
    let op = phone.open();
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    fake.add_machine("m1", "Aerial platform");
    fake.add_machine("m2", "Zoom boom");
    fake.put_key(
        "k-old",
        OPERATOR,
        &["m1"],
        T0 - Duration::days(10),
        T0 - Duration::hours(1),
    );
    fake.put_key(
        "k-next",
        OPERATOR,
        &["m1"],
        T0 + Duration::days(1),
        T0 + Duration::days(2),
    );
    fake.put_key(
        "k-now",
        OPERATOR,
        &["m2"],
        T0 - Duration::days(1),
        T0 + Duration::days(1),
    );
    op.sync().await.unwrap();

    let keys = op.keys().unwrap();
    let summary: Vec<(&str, KeyState, bool)> =
        keys.iter().map(|k| (k.id.as_str(), k.state, k.usable)).collect();
    assert_eq!(
        summary,
        [
            ("k-now", _KS::Active, true),
            ("k-next", _KS::Upcoming, false),
            ("k-old", _KS::Expired, false),
        ]
    );
    let status = op.status().unwrap();
    assert_eq!((status.key_count, status.usable_key_count), (3, 1));
}
