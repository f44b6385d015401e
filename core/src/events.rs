//! Change events: how the apps learn that a sync ran, that the keys changed or that the
//! enrollment changed, without polling.
//!
//! Owns the listener registry of one [`crate::OpKey`] and the [`Subscription`] handles.
//! Listeners are called synchronously on the thread that made the change. This module
//! never calls a listener while holding a lock (the store's or its own), so a listener
//! may call back into the `OpKey`; and a panicking listener is caught and logged, never
//! allowed to poison a lock or break the operation that emitted the event. Events carry
//! no secret.

use crate::views::SyncReport;
use serde::Serialize;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, ThreadId};

/// Something that changed on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum ChangeEvent {
    SyncStarted,
    SyncFinished {
        report: SyncReport,
    },
    /// The sync failed or was cancelled; the store is unchanged.
    SyncFailed {
        reason: String,
        cancelled: bool,
    },
    /// The keys held on the phone changed (a sync that changed keys, enrollment of
    /// another operator, revocation wiping keys).
    KeysChanged,
    /// Enrolled, re-enrolled, or the phone binding was revoked.
    EnrollmentChanged,
}

impl ChangeEvent {
    fn name(&self) -> &'static str {
        match self {
            ChangeEvent::SyncStarted => "sync-started",
            ChangeEvent::SyncFinished { .. } => "sync-finished",
            ChangeEvent::SyncFailed { .. } => "sync-failed",
            ChangeEvent::KeysChanged => "keys-changed",
            ChangeEvent::EnrollmentChanged => "enrollment-changed",
        }
    }
}

/// Implemented by the app. Events may arrive on any thread, synchronously with the
/// change: hand them to the UI thread without blocking on it (post, not wait).
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, event: ChangeEvent);
}

/// A listener's registration, returned by [`crate::OpKey::subscribe`].
///
/// Dropping it does **not** cancel it: keep it and call [`Subscription::cancel`], or let
/// the listener go away with the `OpKey`. It holds the listener only weakly.
pub struct Subscription {
    slot: Weak<Slot>,
    registry: Weak<Mutex<Vec<Arc<Slot>>>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("active", &self.is_active())
            .finish()
    }
}

impl Subscription {
    /// Stops the events. Idempotent, callable from any thread, also from inside the
    /// listener's own `on_change`. Once it returns the listener is not called again: if
    /// another thread is delivering an event to it at that moment, `cancel` waits for
    /// that one call to return (so a listener must not block on the thread that cancels
    /// it).
    pub fn cancel(&self) {
        let Some(slot) = self.slot.upgrade() else {
            return;
        };
        let me = thread::current().id();
        let mut state = lock(&slot.state);
        state.cancelled = true;
        while state.delivering.iter().any(|t| *t != me) {
            state = slot.idle.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        if let Some(registry) = self.registry.upgrade() {
            lock(&registry).retain(|s| !Arc::ptr_eq(s, &slot));
        }
    }

    /// False once cancelled, or once its `OpKey` is gone.
    pub fn is_active(&self) -> bool {
        self.slot
            .upgrade()
            .is_some_and(|slot| !lock(&slot.state).cancelled)
    }
}

/// The listeners of one `OpKey`; they are dropped with it.
#[derive(Default)]
pub(crate) struct Listeners {
    slots: Arc<Mutex<Vec<Arc<Slot>>>>,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listeners")
            .field("count", &lock(&self.slots).len())
            .finish()
    }
}

struct Slot {
    listener: Arc<dyn ChangeListener>,
    state: Mutex<SlotState>,
    /// Signalled whenever a delivery ends, for `cancel` to wait on.
    idle: Condvar,
}

#[derive(Default)]
struct SlotState {
    cancelled: bool,
    /// Threads inside `on_change` right now (a thread may appear twice if the
    /// listener makes a change that emits again).
    delivering: Vec<ThreadId>,
}

impl Listeners {
    pub(crate) fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Subscription {
        let slot = Arc::new(Slot {
            listener,
            state: Mutex::new(SlotState::default()),
            idle: Condvar::new(),
        });
        lock(&self.slots).push(slot.clone());
        Subscription {
            slot: Arc::downgrade(&slot),
            registry: Arc::downgrade(&self.slots),
        }
    }

    /// Calls every active listener, in subscription order, on this thread.
    pub(crate) fn emit(&self, event: ChangeEvent) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).clone();
        for slot in slots {
            slot.deliver(&event);
        }
    }
}

impl Slot {
    fn deliver(&self, event: &ChangeEvent) {
        let me = thread::current().id();
        {
            let mut state = lock(&self.state);
            if state.cancelled {
                return;
            }
            state.delivering.push(me);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.listener.on_change(event.clone())));
        {
            let mut state = lock(&self.state);
            if let Some(i) = state.delivering.iter().position(|t| *t == me) {
                state.delivering.swap_remove(i);
            }
        }
        self.idle.notify_all();
        if outcome.is_err() {
            tracing::error!(
                event = event.name(),
                "a change listener panicked; it stays subscribed"
            );
        }
    }
}

/// No code runs foreign callbacks under these locks, so a poisoned one still holds
/// consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    struct Slow {
        entered: Mutex<mpsc::Sender<()>>,
        done: AtomicBool,
    }

    impl ChangeListener for Slow {
        fn on_change(&self, _: ChangeEvent) {
            self.entered.lock().unwrap().send(()).unwrap();
            thread::sleep(Duration::from_millis(150));
            self.done.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn cancel_returns_only_after_a_delivery_on_another_thread_has_ended() {
        let listeners = Arc::new(Listeners::default());
        let (tx, rx) = mpsc::channel();
        let slow = Arc::new(Slow {
            entered: Mutex::new(tx),
            done: AtomicBool::new(false),
        });
        let sub = listeners.subscribe(slow.clone());
        let emitter = thread::spawn({
            let listeners = listeners.clone();
            move || listeners.emit(ChangeEvent::KeysChanged)
        });
        rx.recv().unwrap();
        sub.cancel();
        assert!(slow.done.load(Ordering::SeqCst), "cancel returned mid-delivery");
        assert!(!sub.is_active());
        emitter.join().unwrap();
        listeners.emit(ChangeEvent::KeysChanged);
        assert!(rx.try_recv().is_err(), "called after cancel");
    }

    #[test]
    fn events_serialize_with_their_kind() {
        let json = serde_json::to_value(ChangeEvent::SyncFailed {
            reason: "no network".into(),
            cancelled: false,
        })
        .unwrap();
        assert_eq!(json["event"], "sync-failed");
        assert_eq!(json["cancelled"], false);
        assert_eq!(
            serde_json::to_value(ChangeEvent::KeysChanged).unwrap()["event"],
            "keys-changed"
        );
    }
}
