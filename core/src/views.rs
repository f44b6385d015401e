//! The records the apps show: keys, machines, enrollment, status and sync results.
//! Plain data (public fields, `Clone`, `Serialize` with times as RFC 3339), built by the
//! store and the facade. Holds nothing secret.

use opkey_protocol::api::{OperatorProfile, UsageEvent};
use opkey_protocol::model::RollingPinInfo;
use opkey_protocol::{AccessType, KeyState, Keypad, Organization, TelematicsUnit};
use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

/// A key as the operator sees it, with its state at server-corrected now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub access_type: AccessType,
    /// A personal key belongs to this operator alone.
    pub personal: bool,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
    pub version: u64,
    pub state: KeyState,
    /// `state == Active`.
    pub usable: bool,
    /// Sorted by name.
    pub machines: Vec<MachineView>,
    /// The card's id, for card access types (shown read-only).
    pub card_id: Option<String>,
    /// A Rolling PIN key's keypad slot and code settings (not secret).
    pub rolling_pin: Option<RollingPinInfo>,
    /// The phone holds this key's PIN secret (a Rolling PIN seed or a personal Static
    /// PIN): [`crate::OpKey::pin`] / [`crate::OpKey::static_pin`] work offline.
    pub pin_synced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineView {
    pub id: String,
    pub name: String,
    pub serial: String,
    pub unit_type: TelematicsUnit,
    pub keypad: Keypad,
}

/// The outcome of redeeming an invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrollment {
    pub phone_id: String,
    pub operator: OperatorProfile,
    pub organizations: Vec<Organization>,
    pub server_url: Url,
}

/// What one sync changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Keys created or changed.
    pub upserted: u32,
    /// Keys removed from the phone.
    pub deleted: u32,
    /// Pages fetched.
    pub pages: u32,
    /// The cursor the next sync starts from.
    pub cursor: u64,
    /// Server time minus phone time, in milliseconds.
    pub server_offset_ms: i64,
    /// Usage events the backend acknowledged during this sync.
    pub events_uploaded: u32,
    /// Usage events still waiting for upload (the upload failed or was cut short; the
    /// next sync tries again).
    pub events_pending: u32,
}

/// A usage event the phone recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    pub event: UsageEvent,
    /// When the backend acknowledged it; `None` while it waits in the outbox.
    #[serde(with = "time::serde::rfc3339::option")]
    pub uploaded_at: Option<OffsetDateTime>,
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "phase")]
pub enum SyncProgress {
    /// About to fetch page `page` (1-based); `keys_so_far` keys received before it.
    Fetching { page: u32, keys_so_far: u32 },
    /// Everything fetched; writing `keys` keys in one transaction.
    Applying { keys: u32 },
}

/// What the phone knows about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// True when an invite was redeemed and the phone's access was not withdrawn since.
    pub enrolled: bool,
    pub phone_id: Option<String>,
    pub operator: Option<OperatorProfile>,
    pub organizations: Vec<Organization>,
    pub server_url: Option<Url>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sync_at: Option<OffsetDateTime>,
    /// Server time minus phone time, in milliseconds, as of the last exchange.
    pub server_offset_ms: Option<i64>,
    /// Set when the phone's clock is more than 30 s off the server's.
    pub clock_warning: Option<String>,
    pub key_count: u32,
    pub usable_key_count: u32,
    pub cursor: u64,
    /// The backend withdrew this phone's access: keys were removed; a new invite is
    /// needed.
    pub revoked: bool,
    /// An invite redeem was started and has no final answer yet
    /// ([`crate::OpKey::resume_redeem`] finishes it).
    pub pending_invite: bool,
}

/// How far the phone clock may be off before the apps warn about it.
pub const CLOCK_WARNING_THRESHOLD_MS: i64 = 30_000;

/// The warning shown when the phone clock is off by more than 30 s. `offset_ms` is
/// server time minus phone time: positive means the phone is slow.
pub fn clock_warning(offset_ms: i64) -> Option<String> {
    clock_warning_beyond(offset_ms, CLOCK_WARNING_THRESHOLD_MS)
}

/// The clock warning when the phone clock is off by more than `threshold_ms` (for a
/// Rolling PIN: one step of the key's period).
pub fn clock_warning_beyond(offset_ms: i64, threshold_ms: i64) -> Option<String> {
    if offset_ms.abs() <= threshold_ms {
        return None;
    }
    let secs = (offset_ms.unsigned_abs() + 500) / 1000;
    let direction = if offset_ms > 0 { "slow" } else { "fast" };
    Some(format!(
        "This phone's clock is {secs} s {direction}. Keys and PINs use the server's time, \
         but set the clock automatically (Settings → Date & time) to avoid surprises."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_warning_says_how_far_and_which_way() {
        assert_eq!(clock_warning(30_000), None);
        assert_eq!(clock_warning(-29_000), None);
        assert!(
            clock_warning(45_000)
                .unwrap()
                .starts_with("This phone's clock is 45 s slow")
        );
        assert!(
            clock_warning(-120_000)
                .unwrap()
                .starts_with("This phone's clock is 120 s fast")
        );
    }
}
