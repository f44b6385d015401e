//! How an [`crate::OpKey`] is set up: where its data lives, which backend it talks to,
//! which invite links it trusts, and how patient it is with the network.
//!
//! Plain data: this module never performs I/O.

use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Settings for one [`crate::OpKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreConfig {
    /// Directory that holds `opkey.db` (created if absent).
    pub data_dir: PathBuf,
    /// The fixed backend (mobile apps). `None`: learn it from the invite link's origin
    /// and remember it in the store (CLI).
    pub server_url: Option<Url>,
    /// Hosts (https only) whose invite links are accepted; compared exactly, ignoring
    /// case. A link may carry a port.
    pub invite_hosts: Vec<String>,
    /// CLI and development: also accept links on 127.0.0.1, localhost and `[::1]`, over
    /// http or https.
    pub allow_loopback_invites: bool,
    /// The name the fleet admin sees for this phone ("Pixel 8").
    pub device_name: String,
    /// Retries of requests that failed for a passing reason.
    pub retry: RetryPolicy,
    /// Upper bound for one HTTP request, from connect to the last body byte.
    pub request_timeout: Duration,
    /// How patient a Digital Key unlock is with the radio.
    pub unlock: UnlockConfig,
}

impl CoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            server_url: None,
            invite_hosts: Vec::new(),
            allow_loopback_invites: false,
            device_name: String::new(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(15),
            unlock: UnlockConfig::default(),
        }
    }
}

/// Timeouts and retries of the Digital Key unlock over Bluetooth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockConfig {
    /// How long to look for the machine's advertisement before "not in range".
    pub scan_timeout: Duration,
    /// Upper bound for one connection attempt.
    pub connect_timeout: Duration,
    /// Connection attempts in total when the link fails for a passing reason (GATT
    /// error 133, a dropped link); the first one included, 0 is treated as 1.
    pub connect_attempts: u32,
    /// Wait before the second attempt; it doubles after each attempt.
    pub connect_retry_delay: Duration,
    /// How long to wait for each message of the machine (its Hello, its answer).
    pub answer_timeout: Duration,
}

impl Default for UnlockConfig {
    fn default() -> Self {
        Self {
            scan_timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(10),
            connect_attempts: 3,
            connect_retry_delay: Duration::from_millis(250),
            answer_timeout: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff for connect errors, timeouts, cut-off bodies and 5xx answers.
/// Answers in the 4xx range are never retried: asking again would not change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first one included (0 is treated as 1).
    pub attempts: u32,
    /// Wait before the second try; it doubles after each try.
    pub first_delay: Duration,
    /// The wait never grows beyond this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait after try number `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::from_millis(200));
        assert_eq!(p.delay_after(2), Duration::from_millis(400));
        assert_eq!(p.delay_after(3), Duration::from_millis(800));
        assert_eq!(p.delay_after(5), Duration::from_secs(2));
        assert_eq!(p.delay_after(60), Duration::from_secs(2));
    }
}
