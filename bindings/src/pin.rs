//! PINs: the Rolling PIN to type now ([`PinView`]), a personal Static PIN
//! ([`StaticPin`]), the phone clock against the server's ([`ClockStatus`]), and a watch
//! that hears every rotation through a [`PinListener`] the shell implements, stopped with
//! its [`PinWatch`] handle. All offline, on the server-corrected clock.

use crate::error::PlatformError;
use crate::records::{AccessType, KeyState};
use std::sync::Arc;
use std::time::SystemTime;

/// The Rolling PIN of one key for the current step.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct PinView {
    pub key_id: String,
    /// What the operator types: the 3-digit keypad slot then the code.
    pub pin: String,
    pub slot: u16,
    pub digits: u8,
    pub period_s: u32,
    /// "sha1", "sha256" or "sha512".
    pub algorithm: String,
    pub step: u64,
    pub valid_from: SystemTime,
    /// When the next PIN shows.
    pub valid_until: SystemTime,
    /// Until when a keypad on the right time still accepts this PIN.
    pub accepted_until: SystemTime,
    /// Whole seconds until `valid_until`, rounded up.
    pub seconds_left: u32,
    /// The server-corrected time this was computed at.
    pub server_time: SystemTime,
    pub key_valid_to: SystemTime,
    /// Set when the phone clock is off by more than one step of the period.
    pub clock_warning: Option<String>,
}

impl std::fmt::Debug for PinView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinView")
            .field("key_id", &self.key_id)
            .field("pin", &"<redacted>")
            .field("step", &self.step)
            .field("seconds_left", &self.seconds_left)
            .finish_non_exhaustive()
    }
}

impl From<opkey_core::PinView> for PinView {
    fn from(v: opkey_core::PinView) -> Self {
        PinView {
            key_id: v.key_id,
            pin: v.pin,
            slot: v.slot,
            digits: v.digits,
            period_s: v.period_s,
            algorithm: v.algorithm.as_str().to_owned(),
            step: v.step,
            valid_from: v.valid_from.into(),
            valid_until: v.valid_until.into(),
            accepted_until: v.accepted_until.into(),
            seconds_left: v.seconds_left,
            server_time: v.server_time.into(),
            key_valid_to: v.key_valid_to.into(),
            clock_warning: v.clock_warning,
        }
    }
}

/// A personal Static PIN.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct StaticPin {
    pub key_id: String,
    pub pin: String,
    pub valid_from: SystemTime,
    pub valid_to: SystemTime,
}

impl std::fmt::Debug for StaticPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticPin")
            .field("key_id", &self.key_id)
            .field("pin", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl From<opkey_core::StaticPinView> for StaticPin {
    fn from(v: opkey_core::StaticPinView) -> Self {
        StaticPin {
            key_id: v.key_id,
            pin: v.pin,
            valid_from: v.valid_from.into(),
            valid_to: v.valid_to.into(),
        }
    }
}

/// The phone clock against the server's, for a "clock wrong" screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClockStatus {
    /// Server time minus phone time in seconds (positive: the phone is slow).
    pub offset_s: i64,
    pub offset_ms: i64,
    /// False before the first exchange with the backend.
    pub measured: bool,
    pub threshold_s: u32,
    pub warning: Option<String>,
    pub server_time: SystemTime,
}

impl From<opkey_core::ClockStatus> for ClockStatus {
    fn from(c: opkey_core::ClockStatus) -> Self {
        ClockStatus {
            offset_s: c.offset_s,
            offset_ms: c.offset_ms,
            measured: c.measured,
            threshold_s: c.threshold_s,
            warning: c.warning,
            server_time: c.server_time.into(),
        }
    }
}

/// Why no PIN can be shown. `reason` says it to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PinError {
    #[error("{reason}")]
    KeyNotFound { key_id: String, reason: String },
    /// The key is another access type (Digital Key, card, or the other kind of PIN).
    #[error("{reason}")]
    NotAPinKey {
        key_id: String,
        access_type: AccessType,
        reason: String,
    },
    /// The key's seed or Static PIN is not on the phone: sync once while online.
    #[error("{reason}")]
    NotSynced { key_id: String, reason: String },
    /// Expired, revoked or not valid yet: `state` says which.
    #[error("{reason}")]
    NotUsable {
        key_id: String,
        state: KeyState,
        reason: String,
    },
    #[error("{reason}")]
    Storage { reason: String },
}

impl From<opkey_core::PinError> for PinError {
    fn from(e: opkey_core::PinError) -> Self {
        use opkey_core::PinError as E;
        let reason = e.to_string();
        match e {
            E::KeyNotFound { id } => PinError::KeyNotFound { key_id: id, reason },
            E::NotRollingPin { id, access_type } | E::NotStaticPin { id, access_type } => {
                PinError::NotAPinKey {
                    key_id: id,
                    access_type: access_type.into(),
                    reason,
                }
            }
            E::NotSynced { id } => PinError::NotSynced { key_id: id, reason },
            E::NotUsable { id, reason: why } => PinError::NotUsable {
                key_id: id,
                state: why.state().into(),
                reason,
            },
            E::Store(_) => PinError::Storage { reason },
        }
    }
}

/// Why a watch stopped by itself.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PinStopReason {
    KeyNotFound,
    NotAPinKey,
    NotSynced,
    NotUsable { state: KeyState },
    Storage,
}

/// Implemented by the app. Called on a background thread (the first PIN on the thread
/// that started the watch): post to the UI thread, do not block. A thrown error is
/// ignored.
#[uniffi::export(foreign)]
pub trait PinListener: Send + Sync {
    /// The current PIN: once at the start, then at each rotation.
    fn on_pin(&self, pin: PinView) -> Result<(), PlatformError>;
    /// The key can no longer give a PIN (expired, revoked, removed by a sync); the watch
    /// has stopped.
    fn on_stopped(&self, why: PinStopReason, reason: String) -> Result<(), PlatformError>;
}

struct ForeignPinListener(Arc<dyn PinListener>);

impl opkey_core::PinListener for ForeignPinListener {
    fn on_pin(&self, pin: opkey_core::PinView) {
        let _ = self.0.on_pin(pin.into());
    }

    fn on_stopped(&self, error: opkey_core::PinError) {
        let why = match PinError::from(error) {
            PinError::KeyNotFound { reason, .. } => (PinStopReason::KeyNotFound, reason),
            PinError::NotAPinKey { reason, .. } => (PinStopReason::NotAPinKey, reason),
            PinError::NotSynced { reason, .. } => (PinStopReason::NotSynced, reason),
            PinError::NotUsable { state, reason, .. } => (PinStopReason::NotUsable { state }, reason),
            PinError::Storage { reason } => (PinStopReason::Storage, reason),
        };
        let _ = self.0.on_stopped(why.0, why.1);
    }
}

/// A running PIN watch. Dropping it does not stop it: call `cancel()`.
#[derive(Debug, uniffi::Object)]
pub struct PinWatch {
    inner: opkey_core::PinWatch,
}

#[uniffi::export]
impl PinWatch {
    /// Stops the watch; once it returns the listener is not called again. Idempotent,
    /// any thread, also from inside the listener.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// Looks at the clock now (e.g. when the screen comes back) and reports a new PIN
    /// if the step changed.
    pub fn refresh(&self) {
        self.inner.tick();
    }
}

pub(crate) fn start(
    core: &Arc<opkey_core::OpKey>,
    key_id: &str,
    listener: Arc<dyn PinListener>,
) -> Result<Arc<PinWatch>, PinError> {
    let inner = core.watch_pin(key_id, Arc::new(ForeignPinListener(listener)))?;
    Ok(Arc::new(PinWatch { inner }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn core_pin_errors_become_typed_exceptions_with_the_cores_message() {
        let e: PinError = opkey_core::PinError::NotRollingPin {
            id: "k1".into(),
            access_type: opkey_core::AccessType::KeyCard,
        }
        .into();
        match e {
            PinError::NotAPinKey {
                key_id,
                access_type,
                reason,
            } => {
                assert_eq!(key_id, "k1");
                assert_eq!(access_type, AccessType::KeyCard);
                assert!(reason.contains("not a Rolling PIN"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let e: PinError = opkey_core::PinError::NotUsable {
            id: "k2".into(),
            reason: opkey_core::PinUnusable::Revoked,
        }
        .into();
        assert!(matches!(
            e,
            PinError::NotUsable {
                state: KeyState::Revoked,
                ..
            }
        ));
        let e: PinError = opkey_core::PinError::NotSynced { id: "k3".into() }.into();
        assert!(matches!(e, PinError::NotSynced { .. }));
    }

    #[derive(Default)]
    struct Heard(Mutex<Vec<PinStopReason>>);

    impl PinListener for Heard {
        fn on_pin(&self, _: PinView) -> Result<(), PlatformError> {
            Err(PlatformError::Unexpected {
                reason: "ignored".into(),
            })
        }
        fn on_stopped(&self, why: PinStopReason, _: String) -> Result<(), PlatformError> {
            self.0.lock().unwrap().push(why);
            Ok(())
        }
    }

    #[test]
    fn a_stopped_watch_tells_the_shell_why() {
        let heard = Arc::new(Heard::default());
        let adapter = ForeignPinListener(heard.clone());
        opkey_core::PinListener::on_stopped(
            &adapter,
            opkey_core::PinError::NotUsable {
                id: "k".into(),
                reason: opkey_core::PinUnusable::Expired {
                    valid_to: opkey_core::OffsetDateTime::UNIX_EPOCH,
                },
            },
        );
        assert_eq!(
            heard.0.lock().unwrap()[..],
            [PinStopReason::NotUsable {
                state: KeyState::Expired
            }]
        );
    }
}
