use super::*;
use crate::events::listen;
use crate::sync::fleet;
use fake::{Fault, OPERATOR};
use opkey_core::{CancelToken, ChangeEvent, Error, KeyView, Status, SyncProgress};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};
use time::Duration;

fn snapshot(op: &OpKey) -> (Vec<KeyView>, Status) {
    (op.keys().unwrap(), op.status().unwrap())
}

/// Cancels `token` after `after`.
async fn cancel_after(token: &CancelToken, after: StdDuration) {
    tokio::time::sleep(after).await;
    token.cancel();
}

#[tokio::test]
async fn cancelling_a_sync_while_the_server_hangs_stops_it_promptly_and_changes_nothing() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    fake.delete_key("k1", OPERATOR);
    fake.put_key("k5", OPERATOR, &["m1"], T0, T0 + Duration::days(2));
    let before = snapshot(&op);
    let (heard, _sub) = listen(&op);
    fake.sticky_fault("/v1/sync", Fault::Hang(StdDuration::from_secs(30)));

    let token = CancelToken::new();
    let progress = Mutex::new(Vec::new());
    let record = |p| progress.lock().unwrap().push(p);
    let started = Instant::now();
    let (answer, ()) = tokio::join!(
        op.sync_cancellable(&token, &record),
        cancel_after(&token, StdDuration::from_millis(100)),
    );
    assert_eq!(answer.unwrap_err(), Error::Cancelled);
    assert!(
        started.elapsed() < StdDuration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        progress.into_inner().unwrap(),
        [SyncProgress::Fetching {
            page: 1,
            keys_so_far: 0
        }]
    );
    assert_eq!(snapshot(&op), before, "a cancelled sync changed the store");
    assert_eq!(
        heard.take(),
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::SyncFailed {
                reason: "cancelled; nothing was changed".into(),
                cancelled: true
            }
        ]
    );

    // The next sync, with a fresh token, gets everything.
    fake.clear_faults();
    let report = op.sync_cancellable(&CancelToken::new(), &|_| {}).await.unwrap();
    assert_eq!((report.upserted, report.deleted), (1, 1));
}

#[tokio::test]
async fn a_sync_cancelled_before_it_starts_asks_the_server_nothing() {
    let (fake, _phone, op) = enrolled().await;
    let (heard, _sub) = listen(&op);
    let asked = fake.requests_to("/").len();
    let token = CancelToken::new();
    token.cancel();
    assert_eq!(
        op.sync_cancellable(&token, &|_| {}).await.unwrap_err(),
        Error::Cancelled
    );
    assert_eq!(fake.requests_to("/").len(), asked);
    assert!(matches!(
        &heard.take()[..],
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::SyncFailed { cancelled: true, .. }
        ]
    ));
}

#[tokio::test]
async fn a_sync_waiting_behind_another_can_be_cancelled() {
    let (fake, _phone, op) = enrolled().await;
    fake.fault("/v1/sync", Fault::Hang(StdDuration::from_millis(500)));
    let token = CancelToken::new();
    let (first, second, ()) = tokio::join!(
        op.sync(),
        async {
            tokio::time::sleep(StdDuration::from_millis(50)).await;
            op.sync_cancellable(&token, &|_| {}).await
        },
        cancel_after(&token, StdDuration::from_millis(100)),
    );
    first.unwrap();
    assert_eq!(second.unwrap_err(), Error::Cancelled);
}

#[tokio::test]
async fn a_sync_whose_future_is_dropped_is_announced_as_cancelled_and_changes_nothing() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    let before = snapshot(&op);
    let (heard, _sub) = listen(&op);
    fake.sticky_fault("/v1/sync", Fault::Hang(StdDuration::from_secs(30)));
    // What an app's task cancellation does to the call: drops it mid-way.
    let dropped = tokio::time::timeout(StdDuration::from_millis(100), op.sync()).await;
    assert!(dropped.is_err());
    assert_eq!(snapshot(&op), before);
    assert!(matches!(
        &heard.take()[..],
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::SyncFailed { cancelled: true, .. }
        ]
    ));
}

#[tokio::test]
async fn cancelling_a_redeem_leaves_the_phone_unenrolled_and_the_invite_still_usable() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (heard, _sub) = listen(&op);
    let (link, _) = fake.invite(OPERATOR);
    fake.fault("/v1/invites/redeem", Fault::Hang(StdDuration::from_secs(30)));

    let token = CancelToken::new();
    let started = Instant::now();
    let (answer, ()) = tokio::join!(
        op.redeem_invite_cancellable(&link, &token),
        cancel_after(&token, StdDuration::from_millis(100)),
    );
    assert_eq!(answer.unwrap_err(), Error::Cancelled);
    assert!(started.elapsed() < StdDuration::from_secs(2));
    let status = op.status().unwrap();
    assert!(!status.enrolled && !status.pending_invite);
    assert_eq!(op.resume_redeem().await.unwrap_err(), Error::NotEnrolled);
    assert_eq!(heard.take(), []);

    let enrollment = op
        .redeem_invite_cancellable(&link, &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(enrollment.operator.id, OPERATOR);
    assert_eq!(heard.take(), [ChangeEvent::EnrollmentChanged]);

    // A token cancelled beforehand never reaches the server.
    let asked = fake.requests_to("/").len();
    let token = CancelToken::new();
    token.cancel();
    let (other, _) = fake.invite("op_bob");
    assert_eq!(
        op.redeem_invite_cancellable(&other, &token).await.unwrap_err(),
        Error::Cancelled
    );
    assert_eq!(fake.requests_to("/").len(), asked);
    assert_eq!(op.status().unwrap().operator.unwrap().id, OPERATOR);
}
