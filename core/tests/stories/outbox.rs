//! Stories of the usage-event outbox: every unlock attempt is recorded on the phone at
//! once, and reaches the backend exactly once through the syncs that follow.

use super::*;
use crate::sim::*;
use fake::Fault;
use opkey_core::{CancelToken, UnlockOutcome};
use std::collections::HashSet;

/// Three attempts with three different ends.
async fn three_attempts(site: &Site) -> Vec<String> {
    let mut ids = Vec::new();
    ids.push(site.unlock().await.unwrap().event_id);
    site.transport.set_in_range(&site.peripheral_id, false);
    site.unlock().await.unwrap_err();
    site.transport.set_in_range(&site.peripheral_id, true);
    site.op
        .unlock("mch_not_mine_000001", site.radio(), &CancelToken::new())
        .await
        .unwrap_err();
    let recorded: Vec<String> = site.outbox().into_iter().map(|e| e.event.id).collect();
    ids.extend(recorded[1..].iter().cloned());
    assert_eq!(recorded, ids, "each attempt once, in order");
    ids
}

#[tokio::test]
async fn every_attempt_is_recorded_once_and_uploaded_by_the_next_sync() {
    let site = Site::new().await;
    let ids = three_attempts(&site).await;
    let entries = site.outbox();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.uploaded_at.is_none()));
    let first = &entries[0].event;
    assert_eq!(
        (first.machine_id.as_str(), first.key_id.as_deref(), first.at),
        (M1, Some(K1), T0)
    );
    assert_eq!(
        (first.outcome.as_str(), first.usage_session),
        ("unlocked", Some(1))
    );
    assert_eq!(entries[1].event.outcome, "not-in-range");
    assert_eq!(entries[2].event.outcome, "not-in-scope");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "ids are unique");
    assert!(ids.iter().all(|id| id.len() == 22));

    let report = site.op.sync().await.unwrap();
    assert_eq!((report.events_uploaded, report.events_pending), (3, 0));
    assert_eq!(site.fake.event_ids(), ids);
    assert!(site.outbox().iter().all(|e| e.uploaded_at == Some(T0)));

    // Nothing new: nothing is sent again.
    let report = site.op.sync().await.unwrap();
    assert_eq!((report.events_uploaded, report.events_pending), (0, 0));
    assert_eq!(site.fake.requests_to("/v1/events").len(), 1);
}

#[tokio::test]
async fn a_lost_receipt_means_a_resend_and_the_backend_stores_each_event_once() {
    let site = Site::new().await;
    let ids = three_attempts(&site).await;

    // The backend stores the events, but every answer is lost: the sync still succeeds.
    site.fake.sticky_fault("/v1/events", Fault::LoseResponse);
    let report = site.op.sync().await.unwrap();
    assert_eq!((report.events_uploaded, report.events_pending), (0, 3));
    assert_eq!(site.fake.event_ids(), ids, "stored on the first try");
    let tries = site.fake.with(|s| s.event_uploads.len());
    assert!(tries >= 1);

    // The next sync sends them again; the backend counts duplicates, stores nothing new.
    site.fake.clear_faults();
    let report = site.op.sync().await.unwrap();
    assert_eq!((report.events_uploaded, report.events_pending), (3, 0));
    assert_eq!(site.fake.event_ids(), ids, "still each event once");
    assert_eq!(site.fake.with(|s| s.event_uploads.len()), tries + 1);
}

#[tokio::test]
async fn a_failing_upload_does_not_fail_the_key_sync() {
    let site = Site::new().await;
    site.unlock().await.unwrap();
    site.fake.sticky_fault("/v1/events", Fault::Status(500));
    site.fake.put_key(
        "key_new_one_00000001",
        fake::OPERATOR,
        &[M1],
        T0,
        T0 + time::Duration::days(1),
    );
    let report = site.op.sync().await.unwrap();
    assert_eq!(report.upserted, 1, "the keys were applied");
    assert_eq!((report.events_uploaded, report.events_pending), (0, 1));
    assert!(site.fake.event_ids().is_empty());
}

#[tokio::test]
async fn the_outbox_survives_a_restart_and_is_uploaded_after_it() {
    let site = Site::new().await;
    let report = site.unlock().await.unwrap();
    assert!(matches!(report.outcome, UnlockOutcome::Unlocked { .. }));
    let Site {
        op,
        phone,
        signer,
        fake,
        ..
    } = site;
    drop(op);

    let op = Site::open(&phone, &signer);
    let entries = op.usage_events().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event.id, report.event_id);
    assert_eq!(entries[0].uploaded_at, None);
    let synced = op.sync().await.unwrap();
    assert_eq!(synced.events_uploaded, 1);
    assert_eq!(fake.event_ids(), [report.event_id]);
}

#[tokio::test]
async fn a_long_outbox_goes_up_in_batches_of_at_most_500() {
    let site = Site::new().await;
    for _ in 0..520 {
        site.op
            .unlock("mch_not_mine_000001", site.radio(), &CancelToken::new())
            .await
            .unwrap_err();
    }
    let report = site.op.sync().await.unwrap();
    assert_eq!((report.events_uploaded, report.events_pending), (520, 0));
    let sizes: Vec<usize> = site.fake.with(|s| s.event_uploads.iter().map(Vec::len).collect());
    assert_eq!(sizes, [500, 20]);
    assert_eq!(site.fake.event_ids().len(), 520);
}
