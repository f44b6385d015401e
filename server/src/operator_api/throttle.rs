//! Throttles invite guessing: after [`MAX_FAILURES`] failed redeems (no invite matches)
//! from one address within [`WINDOW`], that address gets `429 too_many_requests` until
//! its oldest failure leaves the window. Kept in memory; uses the injected clock.

use crate::error::ApiError;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

pub const MAX_FAILURES: usize = 10;
pub const WINDOW: Duration = Duration::minutes(10);
/// Above this many tracked addresses, stale ones are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct RedeemThrottle {
    failures: Mutex<HashMap<Option<IpAddr>, VecDeque<OffsetDateTime>>>,
}

impl RedeemThrottle {
    /// Refuses the address while it has too many recent failures.
    pub fn check(&self, ip: Option<IpAddr>, now: OffsetDateTime) -> Result<(), ApiError> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = map.get_mut(&ip) else {
            return Ok(());
        };
        prune(times, now);
        match times.front() {
            Some(&oldest) if times.len() >= MAX_FAILURES => {
                let wait = (oldest + WINDOW - now).whole_seconds().max(1);
                Err(ApiError::TooManyRequests {
                    retry_after_secs: wait as u64,
                })
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: Option<IpAddr>, now: OffsetDateTime) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
        }
        let times = map.entry(ip).or_default();
        prune(times, now);
        times.push_back(now);
    }
}

fn prune(times: &mut VecDeque<OffsetDateTime>, now: OffsetDateTime) {
    while times.front().is_some_and(|&t| t + WINDOW <= now) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ten_failures_lock_the_address_until_the_oldest_leaves_the_window() {
        let throttle = RedeemThrottle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        let start = datetime!(2026-01-01 00:00 UTC);
        for i in 0..10 {
            throttle.check(ip, start).unwrap();
            throttle.record_failure(ip, start + Duration::seconds(i));
        }
        let later = start + Duration::minutes(5);
        assert!(matches!(
            throttle.check(ip, later),
            Err(ApiError::TooManyRequests {
                retry_after_secs: 300
            })
        ));
        throttle.check(other, later).unwrap();
        throttle.check(ip, start + Duration::minutes(10)).unwrap();
    }
}
