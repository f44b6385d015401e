use super::*;
use crate::sync::fleet;
use fake::{Fault, OPERATOR};
use opkey_core::{ChangeEvent, ChangeListener, Error, Subscription};
use std::sync::{Mutex, OnceLock, Weak};
use time::Duration;

/// A listener that remembers what it heard.
#[derive(Debug, Default)]
pub struct Heard(Mutex<Vec<ChangeEvent>>);

impl ChangeListener for Heard {
    fn on_change(&self, event: ChangeEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Heard {
    /// Everything heard since the last call.
    pub fn take(&self) -> Vec<ChangeEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub fn listen(op: &OpKey) -> (Arc<Heard>, Subscription) {
    let heard = Arc::new(Heard::default());
    let sub = op.subscribe(heard.clone());
    (heard, sub)
}

#[tokio::test]
async fn a_sync_is_announced_with_its_report_and_keys_changed_only_when_they_did() {
    let (fake, _phone, op) = enrolled().await;
    let (heard, _sub) = listen(&op);
    fleet(&fake);
    let report = op.sync().await.unwrap();
    assert_eq!(
        heard.take(),
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::KeysChanged,
            ChangeEvent::SyncFinished { report }
        ]
    );

    let report = op.sync().await.unwrap();
    assert_eq!(
        heard.take(),
        [ChangeEvent::SyncStarted, ChangeEvent::SyncFinished { report }],
        "nothing changed: no KeysChanged"
    );
}

#[tokio::test]
async fn a_failed_sync_is_announced_as_failed_with_the_reason_the_app_shows() {
    let (fake, _phone, op) = enrolled().await;
    let (heard, _sub) = listen(&op);
    fake.sticky_fault("/v1/sync", Fault::Status(500));
    let err = op.sync().await.unwrap_err();
    assert_eq!(
        heard.take(),
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::SyncFailed {
                reason: err.to_string(),
                cancelled: false
            }
        ]
    );

    // A phone that is not enrolled gets the same pair: no spinner is left turning.
    let (_fake, phone) = backend_and_phone().await;
    let fresh = phone.open();
    let (heard, _sub) = listen(&fresh);
    assert_eq!(fresh.sync().await.unwrap_err(), Error::NotEnrolled);
    assert!(matches!(
        &heard.take()[..],
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::SyncFailed { cancelled: false, .. }
        ]
    ));
}

#[tokio::test]
async fn enrolling_is_announced_and_switching_operator_also_changes_the_keys() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (heard, _sub) = listen(&op);
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap();
    assert_eq!(heard.take(), [ChangeEvent::EnrollmentChanged]);

    fleet(&fake);
    op.sync().await.unwrap();
    heard.take();
    // Bob takes over the phone: Ann's keys leave it.
    op.redeem_invite(&fake.invite("op_bob").0).await.unwrap();
    assert_eq!(
        heard.take(),
        [ChangeEvent::EnrollmentChanged, ChangeEvent::KeysChanged]
    );
    assert!(op.keys().unwrap().is_empty());

    // A refused invite changes nothing and says nothing.
    fake.fault(
        "/v1/invites/redeem",
        Fault::Code(410, opkey_protocol::api::ErrorCode::InviteExpired),
    );
    op.redeem_invite(&fake.invite(OPERATOR).0).await.unwrap_err();
    assert_eq!(heard.take(), []);
}

#[tokio::test]
async fn a_withdrawn_phone_announces_that_its_enrollment_and_keys_changed() {
    let (fake, _phone, op) = enrolled().await;
    fleet(&fake);
    op.sync().await.unwrap();
    let (heard, _sub) = listen(&op);
    fake.revoke_phones();
    assert_eq!(op.sync().await.unwrap_err(), Error::PhoneRevoked);
    assert_eq!(
        heard.take(),
        [
            ChangeEvent::SyncStarted,
            ChangeEvent::EnrollmentChanged,
            ChangeEvent::KeysChanged,
            ChangeEvent::SyncFailed {
                reason: Error::PhoneRevoked.to_string(),
                cancelled: false
            },
        ]
    );
}

/// Reads the keys from inside `on_change`, as an app refreshing its list would.
struct Refresher {
    op: Weak<OpKey>,
    seen: Mutex<Vec<(usize, bool)>>,
}

impl ChangeListener for Refresher {
    fn on_change(&self, event: ChangeEvent) {
        if event == ChangeEvent::KeysChanged {
            let op = self.op.upgrade().unwrap();
            let keys = op.keys().unwrap().len();
            let enrolled = op.status().unwrap().enrolled;
            self.seen.lock().unwrap().push((keys, enrolled));
        }
    }
}

#[tokio::test]
async fn a_listener_may_read_the_keys_while_it_is_told_they_changed() {
    let (fake, _phone, op) = enrolled().await;
    let op = Arc::new(op);
    let refresher = Arc::new(Refresher {
        op: Arc::downgrade(&op),
        seen: Mutex::new(Vec::new()),
    });
    let _sub = op.subscribe(refresher.clone());
    fleet(&fake);
    op.sync().await.unwrap();
    fake.revoke_phones();
    op.sync().await.unwrap_err();
    assert_eq!(*refresher.seen.lock().unwrap(), [(2, true), (0, false)]);
}

struct Panicky;

impl ChangeListener for Panicky {
    fn on_change(&self, event: ChangeEvent) {
        panic!("the app's listener broke on {event:?}");
    }
}

#[tokio::test]
async fn a_panicking_listener_breaks_neither_the_sync_nor_the_other_listeners() {
    let (fake, _phone, op) = enrolled().await;
    let _bad = op.subscribe(Arc::new(Panicky));
    let (heard, _sub) = listen(&op);
    fleet(&fake);
    let report = op.sync().await.unwrap();
    assert_eq!(report.upserted, 2);
    assert_eq!(heard.take().len(), 3);
    // Nothing was poisoned: the next calls work as usual.
    assert_eq!(op.keys().unwrap().len(), 2);
    fake.put_key("k5", OPERATOR, &["m1"], T0, T0 + Duration::days(2));
    assert_eq!(op.sync().await.unwrap().upserted, 1);
    assert_eq!(heard.take().len(), 3);
}

#[tokio::test]
async fn a_cancelled_subscription_hears_nothing_more_while_others_still_do() {
    let (fake, _phone, op) = enrolled().await;
    let (gone, sub) = listen(&op);
    let (stays, _keep) = listen(&op);
    assert!(sub.is_active());
    sub.cancel();
    sub.cancel();
    assert!(!sub.is_active());
    fleet(&fake);
    op.sync().await.unwrap();
    assert_eq!(gone.take(), []);
    assert_eq!(stays.take().len(), 3);
    assert!(format!("{sub:?}").contains("active: false"));
}

/// Stops listening after the first event, from inside `on_change`.
#[derive(Default)]
struct Once {
    sub: OnceLock<Subscription>,
    heard: Heard,
}

impl ChangeListener for Once {
    fn on_change(&self, event: ChangeEvent) {
        self.heard.on_change(event);
        self.sub.get().unwrap().cancel();
    }
}

#[tokio::test]
async fn a_listener_may_cancel_its_own_subscription_while_being_called() {
    let (_fake, _phone, op) = enrolled().await;
    let once = Arc::new(Once::default());
    once.sub.set(op.subscribe(once.clone())).unwrap();
    op.sync().await.unwrap();
    op.sync().await.unwrap();
    assert_eq!(once.heard.take(), [ChangeEvent::SyncStarted]);
}

#[tokio::test]
async fn dropping_a_subscription_does_not_stop_the_events() {
    let (_fake, _phone, op) = enrolled().await;
    let heard = Arc::new(Heard::default());
    drop(op.subscribe(heard.clone()));
    op.sync().await.unwrap();
    assert_eq!(heard.take().len(), 2);
}

#[tokio::test]
async fn listeners_go_away_with_the_opkey() {
    let (_fake, _phone, op) = enrolled().await;
    let (heard, sub) = listen(&op);
    assert_eq!(Arc::strong_count(&heard), 2);
    drop(op);
    assert_eq!(Arc::strong_count(&heard), 1, "the OpKey kept the listener alive");
    assert!(!sub.is_active());
    sub.cancel();
}
