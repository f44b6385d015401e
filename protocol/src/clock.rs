//! The one source of time. Everything that asks "what time is it" takes a [`Clock`],
//! so expiry, skew and rotation are tested with a clock the test controls.

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to. For tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clock that runs `offset` ahead of (or, negative, behind) another one: a phone whose
/// clock has drifted, in tests.
#[derive(Debug)]
pub struct SkewedClock<C> {
    pub inner: C,
    pub offset: Duration,
}

impl<C: Clock> Clock for SkewedClock<C> {
    fn now(&self) -> OffsetDateTime {
        self.inner.now() + self.offset
    }
}
