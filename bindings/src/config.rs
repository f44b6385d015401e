//! [`OpKeyConfig`]: how the app sets up its [`crate::OpKey`]. Plain data.

use crate::error::OpKeyError;
use opkey_core::{CoreConfig, RetryPolicy, Url};
use std::time::Duration;

/// Settings for one [`crate::OpKey`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OpKeyConfig {
    /// Directory that holds the encrypted store (created if absent), e.g. the app's
    /// files dir.
    pub data_dir: String,
    /// The fixed backend, e.g. `https://keys.example.com/`. Null: learn it from the
    /// invite link's origin.
    pub server_url: Option<String>,
    /// Hosts (https only) whose invite links are accepted; compared exactly, ignoring
    /// case.
    pub invite_hosts: Vec<String>,
    /// Development only: also accept invite links on 127.0.0.1, localhost and [::1].
    #[uniffi(default = false)]
    pub allow_loopback_invites: bool,
    /// The name the fleet admin sees for this phone ("Pixel 8").
    pub device_name: String,
    /// Upper bound for one HTTP request, from connect to the last body byte.
    #[uniffi(default = 15000)]
    pub request_timeout_ms: u64,
    /// Tries per request for failures that may pass (connect errors, timeouts, 5xx),
    /// the first one included.
    #[uniffi(default = 4)]
    pub network_attempts: u32,
}

impl TryFrom<OpKeyConfig> for CoreConfig {
    type Error = OpKeyError;

    fn try_from(c: OpKeyConfig) -> Result<Self, OpKeyError> {
        let server_url = c
            .server_url
            .map(|s| {
                Url::parse(&s).map_err(|e| OpKeyError::InvalidConfig {
                    reason: format!("server_url '{s}' is not a URL: {e}"),
                })
            })
            .transpose()?;
        let mut config = CoreConfig::new(c.data_dir);
        config.server_url = server_url;
        config.invite_hosts = c.invite_hosts;
        config.allow_loopback_invites = c.allow_loopback_invites;
        config.device_name = c.device_name;
        config.request_timeout = Duration::from_millis(c.request_timeout_ms);
        config.retry = RetryPolicy {
            attempts: c.network_attempts,
            ..RetryPolicy::default()
        };
        Ok(config)
    }
}
