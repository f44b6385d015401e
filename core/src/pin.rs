//! PIN display: the Rolling PIN to type on a machine's keypad now, a personal Static PIN,
//! the phone clock's standing against the server, and a watch that hears every rotation.
//!
//! Everything here works offline: the seed (or static PIN) came with a sync and stays
//! sealed in the store; the time is the injected [`crate::Clock`] corrected by the
//! server-time offset measured at the last exchange with the backend, in UTC seconds
//! (the phone's time zone plays no part). The phone clock being off by more than one step
//! of a key's period is reported with the PIN (`clock_warning`) and on its own
//! ([`ClockStatus`]).
//!
//! A [`PinView`] holds the PIN itself: its `Debug` hides it, and nothing here logs it.

use crate::OpKey;
use crate::error::Error;
use crate::store::{PinKeyRecord, StoreError};
use crate::views;
use opkey_protocol::pin::{PinAlgorithm, PinSeed, rolling_pin};
use opkey_protocol::{AccessType, KeyState};
use serde::Serialize;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, ThreadId};
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A key's PIN secret as the store holds it (sealed) and hands it out (opened).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PinSecret {
    Seed(PinSeed),
    Static(Zeroizing<String>),
}

impl fmt::Debug for PinSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSecret::Seed(seed) => write!(f, "Seed({seed:?})"),
            PinSecret::Static(_) => f.write_str("Static(<redacted>)"),
        }
    }
}

/// The Rolling PIN of one key for the current step, at server-corrected now.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PinView {
    pub key_id: String,
    /// What the operator types on the keypad: the 3-digit slot then the code.
    pub pin: String,
    pub slot: u16,
    /// Digits of the code (the PIN is 3 more).
    pub digits: u8,
    pub period_s: u32,
    pub algorithm: PinAlgorithm,
    /// The TOTP time step this PIN belongs to.
    pub step: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    /// When the phone shows the next PIN.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
    /// Until when a keypad on the right time still accepts it (one step of tolerance).
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_until: OffsetDateTime,
    /// Whole seconds until `valid_until`, rounded up (1 ..= period).
    pub seconds_left: u32,
    /// The server-corrected time this view was computed at.
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    /// The end of the key itself: no PIN after it.
    #[serde(with = "time::serde::rfc3339")]
    pub key_valid_to: OffsetDateTime,
    /// Set when the phone clock is off the server's by more than one step of the period.
    pub clock_warning: Option<String>,
}

impl fmt::Debug for PinView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinView")
            .field("key_id", &self.key_id)
            .field("pin", &"<redacted>")
            .field("step", &self.step)
            .field("valid_until", &self.valid_until)
            .field("seconds_left", &self.seconds_left)
            .field("clock_warning", &self.clock_warning.is_some())
            .finish_non_exhaustive()
    }
}

/// A personal Static PIN, shown to its operator.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct StaticPinView {
    pub key_id: String,
    pub pin: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
}

impl fmt::Debug for StaticPinView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticPinView")
            .field("key_id", &self.key_id)
            .field("pin", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The phone clock against the server's, for a "clock wrong" screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockStatus {
    /// Server time minus phone time, whole seconds (positive: the phone is slow).
    pub offset_s: i64,
    pub offset_ms: i64,
    /// False before the first exchange with the backend (the offset is then 0).
    pub measured: bool,
    /// The phone clock may be off by this much before the warning: one step of the
    /// shortest Rolling PIN period on the phone, else 30 s.
    pub threshold_s: u32,
    pub warning: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

/// Why a key cannot give a PIN right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum PinUnusable {
    Expired {
        #[serde(with = "time::serde::rfc3339")]
        valid_to: OffsetDateTime,
    },
    NotYetValid {
        #[serde(with = "time::serde::rfc3339")]
        valid_from: OffsetDateTime,
    },
    Revoked,
}

impl PinUnusable {
    pub fn state(self) -> KeyState {
        match self {
            PinUnusable::Expired { .. } => KeyState::Expired,
            PinUnusable::NotYetValid { .. } => KeyState::Upcoming,
            PinUnusable::Revoked => KeyState::Revoked,
        }
    }
}

impl fmt::Display for PinUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |t: &OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.unix_timestamp().to_string())
        };
        match self {
            PinUnusable::Expired { valid_to } => write!(f, "it expired at {}", at(valid_to)),
            PinUnusable::NotYetValid { valid_from } => write!(f, "it is valid from {}", at(valid_from)),
            PinUnusable::Revoked => f.write_str("it was revoked"),
        }
    }
}

/// Why no PIN can be shown. No variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("there is no key {id} on this phone: sync to refresh your keys")]
    KeyNotFound { id: String },
    #[error("key {id} is a {} key, not a Rolling PIN: it has no PIN to show", access_type.label())]
    NotRollingPin { id: String, access_type: AccessType },
    #[error("key {id} is a {} key, not a Static PIN", access_type.label())]
    NotStaticPin { id: String, access_type: AccessType },
    /// The key is on the phone but its seed (or personal Static PIN) is not: sync once
    /// while online. A shared Static PIN is never on the phone: the admin hands it out.
    #[error(
        "the PIN of key {id} is not on this phone yet: sync once while online \
         (a shared Static PIN is handed out by your fleet admin)"
    )]
    NotSynced { id: String },
    #[error("key {id} cannot be used now: {reason}")]
    NotUsable { id: String, reason: PinUnusable },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PinError> for Error {
    fn from(e: PinError) -> Self {
        match e {
            PinError::KeyNotFound { id } => Error::KeyNotFound { id },
            PinError::Store(s) => Error::Store(s),
            other => Error::Internal {
                reason: other.to_string(),
            },
        }
    }
}

fn usable(record: &PinKeyRecord, now: OffsetDateTime) -> Result<(), PinError> {
    let reason = match record.state_at(now) {
        KeyState::Active => return Ok(()),
        KeyState::Revoked => PinUnusable::Revoked,
        KeyState::Expired => PinUnusable::Expired {
            valid_to: record.validity.valid_to,
        },
        KeyState::Upcoming => PinUnusable::NotYetValid {
            valid_from: record.validity.valid_from,
        },
    };
    Err(PinError::NotUsable {
        id: record.id.clone(),
        reason,
    })
}

fn unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The Rolling PIN of `record` at server time `now`, with the phone clock `offset_ms`
/// behind the server (for the warning).
pub(crate) fn rolling_view(
    record: &PinKeyRecord,
    now: OffsetDateTime,
    offset_ms: Option<i64>,
) -> Result<PinView, PinError> {
    let info = match (record.access_type, record.rolling_pin) {
        (AccessType::RollingPin, Some(info)) => info,
        (AccessType::RollingPin, None) => {
            return Err(PinError::NotSynced {
                id: record.id.clone(),
            });
        }
        (other, _) => {
            return Err(PinError::NotRollingPin {
                id: record.id.clone(),
                access_type: other,
            });
        }
    };
    let Some(PinSecret::Seed(seed)) = &record.secret else {
        return Err(PinError::NotSynced {
            id: record.id.clone(),
        });
    };
    usable(record, now)?;
    let spec = info.spec();
    let code = rolling_pin(seed, &spec, info.slot, now.unix_timestamp());
    let valid_until = unix(code.valid_until);
    let left_ms = (valid_until - now).whole_milliseconds().max(0);
    let seconds_left = u32::try_from((left_ms + 999) / 1000).unwrap_or(u32::MAX);
    Ok(PinView {
        key_id: record.id.clone(),
        pin: code.pin.as_str().to_owned(),
        slot: info.slot.get(),
        digits: info.digits,
        period_s: info.period_s,
        algorithm: info.algorithm,
        step: code.step,
        valid_from: unix(code.valid_from),
        valid_until,
        accepted_until: unix(code.accepted_until),
        seconds_left,
        server_time: now,
        key_valid_to: record.validity.valid_to,
        clock_warning: offset_ms
            .and_then(|ms| views::clock_warning_beyond(ms, i64::from(info.period_s) * 1000)),
    })
}

pub(crate) fn static_view(record: &PinKeyRecord, now: OffsetDateTime) -> Result<StaticPinView, PinError> {
    if record.access_type != AccessType::StaticPin {
        return Err(PinError::NotStaticPin {
            id: record.id.clone(),
            access_type: record.access_type,
        });
    }
    let Some(PinSecret::Static(pin)) = &record.secret else {
        return Err(PinError::NotSynced {
            id: record.id.clone(),
        });
    };
    usable(record, now)?;
    Ok(StaticPinView {
        key_id: record.id.clone(),
        pin: pin.as_str().to_owned(),
        valid_from: record.validity.valid_from,
        valid_to: record.validity.valid_to,
    })
}

pub(crate) fn clock_status(
    offset_ms: Option<i64>,
    shortest_period_s: Option<u32>,
    server_time: OffsetDateTime,
) -> ClockStatus {
    let threshold_s = shortest_period_s.unwrap_or((views::CLOCK_WARNING_THRESHOLD_MS / 1000) as u32);
    let ms = offset_ms.unwrap_or(0);
    ClockStatus {
        offset_s: (ms as f64 / 1000.0).round() as i64,
        offset_ms: ms,
        measured: offset_ms.is_some(),
        threshold_s,
        warning: views::clock_warning_beyond(ms, i64::from(threshold_s) * 1000),
        server_time,
    }
}

// ---- the rotation watch -------------------------------------------------------------

/// Implemented by the app: hears the PIN of a watched key at once and at each rotation.
/// Called on a background thread (or the thread that started the watch, for the first
/// PIN, or that called [`PinWatch::tick`]): post to the UI thread, do not block.
pub trait PinListener: Send + Sync {
    /// The current PIN: once at the start, then once per new step.
    fn on_pin(&self, pin: PinView);
    /// The key can no longer give a PIN (expired, revoked, deleted by a sync …); the
    /// watch has stopped. Not called after a cancel.
    fn on_stopped(&self, error: PinError);
}

/// A running watch, returned by [`OpKey::watch_pin`]. Dropping it does **not** stop it:
/// call [`PinWatch::cancel`] (it also stops when its `OpKey` is dropped).
pub struct PinWatch {
    inner: Arc<Watch>,
}

impl fmt::Debug for PinWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinWatch")
            .field("key_id", &self.inner.key_id)
            .field("active", &self.is_active())
            .finish()
    }
}

struct Watch {
    op: Weak<OpKey>,
    key_id: String,
    listener: Arc<dyn PinListener>,
    state: Mutex<WatchState>,
    /// Signalled on cancel (wakes the driver) and when a delivery ends.
    changed: Condvar,
}

#[derive(Default)]
struct WatchState {
    stopped: bool,
    /// The step last delivered, and when its PIN ends (server time).
    last: Option<(u64, OffsetDateTime)>,
    /// The thread inside a tick right now.
    ticking: Option<ThreadId>,
}

/// The longest the driver sleeps between looks at the clock (real time): an injected
/// clock that jumps is noticed within this.
const MAX_NAP: Duration = Duration::from_secs(1);

impl PinWatch {
    /// Stops the watch. Idempotent, any thread, also from inside the listener. Once it
    /// returns the listener is not called again (a delivery on another thread at that
    /// moment is waited for).
    pub fn cancel(&self) {
        let me = thread::current().id();
        let mut state = lock(&self.inner.state);
        state.stopped = true;
        self.inner.changed.notify_all();
        while state.ticking.is_some_and(|t| t != me) {
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub fn is_active(&self) -> bool {
        !lock(&self.inner.state).stopped && self.inner.op.strong_count() > 0
    }

    /// Looks at the clock now and tells the listener if the step changed (or the key can
    /// no longer give a PIN). The background driver calls this itself; an app (or a
    /// test with a manual clock) may call it too, e.g. when the screen comes back.
    pub fn tick(&self) {
        self.inner.tick();
    }
}

impl Watch {
    fn tick(&self) {
        let me = thread::current().id();
        {
            let mut state = lock(&self.state);
            if state.ticking == Some(me) {
                return; // called from inside the listener
            }
            // One tick at a time, so each step is delivered exactly once.
            while state.ticking.is_some() && !state.stopped {
                state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.stopped {
                return;
            }
            state.ticking = Some(me);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.look()));
        let mut state = lock(&self.state);
        state.ticking = None;
        match outcome {
            Ok(Some(stop)) if stop => state.stopped = true,
            Ok(_) => {}
            Err(_) => tracing::error!(key_id = self.key_id, "a PIN listener panicked; the watch goes on"),
        }
        drop(state);
        self.changed.notify_all();
    }

    /// One look: `Some(true)` when the watch must stop.
    fn look(&self) -> Option<bool> {
        let Some(op) = self.op.upgrade() else {
            return Some(true);
        };
        match op.pin(&self.key_id) {
            Ok(view) => {
                let fresh = {
                    let mut state = lock(&self.state);
                    if state.stopped || state.last.is_some_and(|(step, _)| step == view.step) {
                        false
                    } else {
                        state.last = Some((view.step, view.valid_until));
                        true
                    }
                };
                if fresh {
                    self.listener.on_pin(view);
                }
                Some(false)
            }
            // A failing store may come back: keep watching.
            Err(PinError::Store(e)) => {
                tracing::warn!(key_id = self.key_id, error = %e, "PIN watch could not read the store");
                Some(false)
            }
            Err(e) => {
                if !lock(&self.state).stopped {
                    self.listener.on_stopped(e);
                }
                Some(true)
            }
        }
    }

    /// How long the driver may sleep: until the current PIN ends, at most [`MAX_NAP`].
    fn nap(&self) -> Duration {
        let Some(op) = self.op.upgrade() else {
            return Duration::ZERO;
        };
        let until = lock(&self.state).last.map(|(_, until)| until);
        match until {
            Some(until) => {
                let left = until - op.now();
                if left.is_negative() {
                    Duration::from_millis(10)
                } else {
                    Duration::try_from(left)
                        .unwrap_or(MAX_NAP)
                        .clamp(Duration::from_millis(10), MAX_NAP)
                }
            }
            None => MAX_NAP,
        }
    }

    fn drive(self: Arc<Self>) {
        loop {
            let nap = self.nap();
            {
                let state = lock(&self.state);
                if state.stopped {
                    return;
                }
                let (state, _) = self
                    .changed
                    .wait_timeout(state, nap)
                    .unwrap_or_else(PoisonError::into_inner);
                if state.stopped {
                    return;
                }
            }
            if self.op.strong_count() == 0 {
                lock(&self.state).stopped = true;
                return;
            }
            self.tick();
        }
    }
}

/// Starts a watch: the current PIN is delivered before this returns.
pub(crate) fn watch(
    op: &Arc<OpKey>,
    key_id: &str,
    listener: Arc<dyn PinListener>,
    drive: bool,
) -> Result<PinWatch, PinError> {
    let first = op.pin(key_id)?;
    let inner = Arc::new(Watch {
        op: Arc::downgrade(op),
        key_id: key_id.to_owned(),
        listener,
        state: Mutex::new(WatchState {
            last: Some((first.step, first.valid_until)),
            ..WatchState::default()
        }),
        changed: Condvar::new(),
    });
    inner.listener.on_pin(first);
    if drive {
        let driver = inner.clone();
        thread::Builder::new()
            .name("opkey-pin-watch".into())
            .spawn(move || driver.drive())
            .map_err(|e| {
                PinError::Store(StoreError::Unavailable {
                    reason: format!("cannot start the PIN watch: {e}"),
                })
            })?;
    }
    Ok(PinWatch { inner })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
