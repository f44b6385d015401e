//! The immobilizer relay and the engine it lets start, as a state machine driven by the
//! instants it is given (no timers, no threads). Off by default and after a restart;
//! on after an unlock until the relock deadline passes, unless the engine starts first.
//! It never decides *whether* to unlock: that is the verifier's job.

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relay {
    on: bool,
    engine_running: bool,
    /// Set while on and the engine has not started.
    relock_at: Option<OffsetDateTime>,
}

impl Relay {
    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn engine_running(&self) -> bool {
        self.engine_running
    }

    /// When the relay locks by itself, if nothing happens before.
    pub fn relock_at(&self) -> Option<OffsetDateTime> {
        self.relock_at
    }

    /// True when the relock deadline has passed.
    pub(crate) fn relock_due(&self, now: OffsetDateTime) -> bool {
        self.relock_at.is_some_and(|at| now >= at)
    }

    /// Relay on; the relock countdown restarts unless the engine already runs.
    pub(crate) fn unlock(&mut self, now: OffsetDateTime, relock_after_s: u16) {
        self.on = true;
        if !self.engine_running {
            self.relock_at = Some(now + Duration::seconds(i64::from(relock_after_s)));
        }
    }

    /// Relay off (the engine stops with it); returns whether it was on.
    pub(crate) fn lock(&mut self) -> bool {
        let was_on = self.on;
        *self = Self::default();
        was_on
    }

    /// The engine starts only through an energised relay; the relock countdown stops.
    pub(crate) fn start_engine(&mut self) -> bool {
        if !self.on {
            return false;
        }
        self.engine_running = true;
        self.relock_at = None;
        true
    }
}
