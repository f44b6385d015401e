//! What the app hears: change events through a [`ChangeListener`] the shell implements
//! (the [`ChangeSubscription`] handle's `cancel()` stops them), and a sync's progress
//! through a [`SyncProgressListener`].
//!
//! Events arrive synchronously on the Rust thread that made the change (a runtime
//! worker during a sync): the listener should post them to its UI thread, not block.

use crate::error::PlatformError;
use crate::records::{SyncProgress, SyncReport};
use std::sync::Arc;

/// Something that changed on the phone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
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
    /// The keys on the phone changed: reload the list.
    KeysChanged,
    /// Enrolled, re-enrolled, or this phone's access was withdrawn: reload the status.
    EnrollmentChanged,
}

/// Implemented by the app. A thrown error is ignored (the listener stays subscribed).
#[uniffi::export(foreign)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, event: ChangeEvent) -> Result<(), PlatformError>;
}

/// Told about each step of one sync, for a progress bar. A thrown error is ignored.
#[uniffi::export(foreign)]
pub trait SyncProgressListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress) -> Result<(), PlatformError>;
}

/// A listener's registration. Dropping it does not stop the events: call `cancel()`.
#[derive(Debug, uniffi::Object)]
pub struct ChangeSubscription {
    inner: opkey_core::Subscription,
}

#[uniffi::export]
impl ChangeSubscription {
    /// Stops the events; once it returns the listener is not called again. Idempotent,
    /// any thread, also from inside the listener.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// False once cancelled, or once its `OpKey` is gone.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }
}

impl From<opkey_core::Subscription> for ChangeSubscription {
    fn from(inner: opkey_core::Subscription) -> Self {
        Self { inner }
    }
}

/// A shell's listener as the core's.
pub(crate) struct ForeignListener(pub(crate) Arc<dyn ChangeListener>);

impl opkey_core::ChangeListener for ForeignListener {
    fn on_change(&self, event: opkey_core::ChangeEvent) {
        // The listener's own failure is its business: the change already happened.
        let _ = self.0.on_change(event.into());
    }
}

impl From<opkey_core::ChangeEvent> for ChangeEvent {
    fn from(e: opkey_core::ChangeEvent) -> Self {
        match e {
            opkey_core::ChangeEvent::SyncStarted => ChangeEvent::SyncStarted,
            opkey_core::ChangeEvent::SyncFinished { report } => ChangeEvent::SyncFinished {
                report: report.into(),
            },
            opkey_core::ChangeEvent::SyncFailed { reason, cancelled } => {
                ChangeEvent::SyncFailed { reason, cancelled }
            }
            opkey_core::ChangeEvent::KeysChanged => ChangeEvent::KeysChanged,
            opkey_core::ChangeEvent::EnrollmentChanged => ChangeEvent::EnrollmentChanged,
        }
    }
}
