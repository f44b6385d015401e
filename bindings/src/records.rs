//! The records and enums the apps show, mirrored from the core's views with `From`
//! impls. Times are `SystemTime` (Kotlin `java.time.Instant`, Swift `Date`), URLs are
//! strings. Plain data: nothing secret, no logic beyond the conversion.

use std::time::SystemTime;

/// A key as the operator sees it, with its state at server-corrected now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Key {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub access_type: AccessType,
    /// A personal key belongs to this operator alone.
    pub personal: bool,
    pub description: String,
    pub valid_from: SystemTime,
    pub valid_to: SystemTime,
    pub version: u64,
    pub state: KeyState,
    /// `state == Active`.
    pub usable: bool,
    /// Sorted by name.
    pub machines: Vec<Machine>,
    /// The card's id, for card access types (read-only).
    pub card_id: Option<String>,
    /// A Rolling PIN key's keypad slot and code settings.
    pub rolling_pin: Option<RollingPinSettings>,
    /// The phone holds this key's PIN (Rolling PIN seed or personal Static PIN).
    pub pin_synced: bool,
}

/// A Rolling PIN key's public settings.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RollingPinSettings {
    pub slot: u16,
    /// "sha1", "sha256" or "sha512".
    pub algorithm: String,
    pub digits: u8,
    pub period_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Machine {
    pub id: String,
    pub name: String,
    pub serial: String,
    pub unit_type: TelematicsUnit,
    pub keypad: Keypad,
}

/// The outcome of redeeming an invite.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Enrollment {
    pub phone_id: String,
    pub operator: Operator,
    pub organizations: Vec<Organization>,
    pub server_url: String,
}

/// The operator this phone is enrolled for.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Operator {
    pub id: String,
    pub name: String,
    /// E.164, e.g. `+4741234567`.
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// What one sync changed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SyncProgress {
    /// About to fetch page `page` (1-based); `keys_so_far` keys received before it.
    Fetching { page: u32, keys_so_far: u32 },
    /// Everything fetched; writing `keys` keys in one transaction.
    Applying { keys: u32 },
}

/// What the phone knows about itself.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Status {
    /// An invite was redeemed and the phone's access was not withdrawn since.
    pub enrolled: bool,
    pub phone_id: Option<String>,
    pub operator: Option<Operator>,
    pub organizations: Vec<Organization>,
    pub server_url: Option<String>,
    pub last_sync_at: Option<SystemTime>,
    /// Server time minus phone time, in milliseconds, as of the last exchange.
    pub server_offset_ms: Option<i64>,
    /// Set when the phone's clock is more than 30 s off the server's: show it.
    pub clock_warning: Option<String>,
    pub key_count: u32,
    pub usable_key_count: u32,
    pub cursor: u64,
    /// The backend withdrew this phone's access; a new invite is needed.
    pub revoked: bool,
    /// A redeem was started and has no final answer yet: `resume_redeem()` finishes it.
    pub pending_invite: bool,
}

/// An invite that is well-formed and may be redeemed. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ParsedInvite {
    pub form: InviteForm,
    /// The origin of an https or loopback link; `None` for the custom scheme and codes.
    pub server_url: Option<String>,
}

/// How the invite reached the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InviteForm {
    /// An `https://<invite host>/i/<token>` link (App Link / Universal Link).
    Link,
    /// The `opkey://invite/<token>` fallback link.
    CustomScheme,
    /// A code typed by hand, like `ABCD-EFGH-JKM`.
    ShortCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AccessType {
    /// The phone unlocks the machine over Bluetooth.
    DigitalKey,
    /// A PIN that rotates on a fixed period, typed on the machine's keypad.
    RollingPin,
    /// A fixed PIN typed on the keypad.
    StaticPin,
    /// A key card that can also enroll other cards on the device.
    PrimaryKeyCard,
    KeyCard,
    /// An IPAF (powered access) licence card.
    IpafCard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum KeyState {
    /// Not valid yet.
    Upcoming,
    /// Usable now.
    Active,
    Expired,
    /// Withdrawn by an admin; never usable again.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TelematicsUnit {
    Tu600,
    Tu700,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Keypad {
    DualId,
    K300,
    None,
}

// ---- from the core ------------------------------------------------------------------

impl From<opkey_core::KeyView> for Key {
    fn from(k: opkey_core::KeyView) -> Self {
        Key {
            id: k.id,
            organization_id: k.organization_id,
            organization_name: k.organization_name,
            access_type: k.access_type.into(),
            personal: k.personal,
            description: k.description,
            valid_from: k.valid_from.into(),
            valid_to: k.valid_to.into(),
            version: k.version,
            state: k.state.into(),
            usable: k.usable,
            machines: k.machines.into_iter().map(Into::into).collect(),
            card_id: k.card_id,
            rolling_pin: k.rolling_pin.map(|p| RollingPinSettings {
                slot: p.slot.get(),
                algorithm: p.algorithm.as_str().to_owned(),
                digits: p.digits,
                period_s: p.period_s,
            }),
            pin_synced: k.pin_synced,
        }
    }
}

impl From<opkey_core::MachineView> for Machine {
    fn from(m: opkey_core::MachineView) -> Self {
        Machine {
            id: m.id,
            name: m.name,
            serial: m.serial,
            unit_type: m.unit_type.into(),
            keypad: m.keypad.into(),
        }
    }
}

impl From<opkey_core::Enrollment> for Enrollment {
    fn from(e: opkey_core::Enrollment) -> Self {
        Enrollment {
            phone_id: e.phone_id,
            operator: e.operator.into(),
            organizations: e.organizations.into_iter().map(Into::into).collect(),
            server_url: e.server_url.into(),
        }
    }
}

impl From<opkey_core::OperatorProfile> for Operator {
    fn from(o: opkey_core::OperatorProfile) -> Self {
        Operator {
            id: o.id,
            name: o.name,
            phone: o.phone.as_str().to_owned(),
        }
    }
}

impl From<opkey_core::Organization> for Organization {
    fn from(o: opkey_core::Organization) -> Self {
        Organization {
            id: o.id,
            name: o.name,
        }
    }
}

impl From<opkey_core::SyncReport> for SyncReport {
    fn from(r: opkey_core::SyncReport) -> Self {
        SyncReport {
            upserted: r.upserted,
            deleted: r.deleted,
            pages: r.pages,
            cursor: r.cursor,
            server_offset_ms: r.server_offset_ms,
        }
    }
}

impl From<opkey_core::SyncProgress> for SyncProgress {
    fn from(p: opkey_core::SyncProgress) -> Self {
        match p {
            opkey_core::SyncProgress::Fetching { page, keys_so_far } => {
                SyncProgress::Fetching { page, keys_so_far }
            }
            opkey_core::SyncProgress::Applying { keys } => SyncProgress::Applying { keys },
        }
    }
}

impl From<opkey_core::Status> for Status {
    fn from(s: opkey_core::Status) -> Self {
        Status {
            enrolled: s.enrolled,
            phone_id: s.phone_id,
            operator: s.operator.map(Into::into),
            organizations: s.organizations.into_iter().map(Into::into).collect(),
            server_url: s.server_url.map(Into::into),
            last_sync_at: s.last_sync_at.map(Into::into),
            server_offset_ms: s.server_offset_ms,
            clock_warning: s.clock_warning,
            key_count: s.key_count,
            usable_key_count: s.usable_key_count,
            cursor: s.cursor,
            revoked: s.revoked,
            pending_invite: s.pending_invite,
        }
    }
}

impl From<opkey_core::ParsedInvite> for ParsedInvite {
    fn from(p: opkey_core::ParsedInvite) -> Self {
        ParsedInvite {
            form: p.form.into(),
            server_url: p.server_url.map(Into::into),
        }
    }
}

impl From<opkey_core::InviteForm> for InviteForm {
    fn from(f: opkey_core::InviteForm) -> Self {
        match f {
            opkey_core::InviteForm::Link => InviteForm::Link,
            opkey_core::InviteForm::CustomScheme => InviteForm::CustomScheme,
            opkey_core::InviteForm::ShortCode => InviteForm::ShortCode,
        }
    }
}

impl From<opkey_core::AccessType> for AccessType {
    fn from(a: opkey_core::AccessType) -> Self {
        match a {
            opkey_core::AccessType::DigitalKey => AccessType::DigitalKey,
            opkey_core::AccessType::RollingPin => AccessType::RollingPin,
            opkey_core::AccessType::StaticPin => AccessType::StaticPin,
            opkey_core::AccessType::PrimaryKeyCard => AccessType::PrimaryKeyCard,
            opkey_core::AccessType::KeyCard => AccessType::KeyCard,
            opkey_core::AccessType::IpafCard => AccessType::IpafCard,
        }
    }
}

impl From<opkey_core::KeyState> for KeyState {
    fn from(s: opkey_core::KeyState) -> Self {
        match s {
            opkey_core::KeyState::Upcoming => KeyState::Upcoming,
            opkey_core::KeyState::Active => KeyState::Active,
            opkey_core::KeyState::Expired => KeyState::Expired,
            opkey_core::KeyState::Revoked => KeyState::Revoked,
        }
    }
}

impl From<opkey_core::TelematicsUnit> for TelematicsUnit {
    fn from(u: opkey_core::TelematicsUnit) -> Self {
        match u {
            opkey_core::TelematicsUnit::Tu600 => TelematicsUnit::Tu600,
            opkey_core::TelematicsUnit::Tu700 => TelematicsUnit::Tu700,
        }
    }
}

impl From<opkey_core::Keypad> for Keypad {
    fn from(k: opkey_core::Keypad) -> Self {
        match k {
            opkey_core::Keypad::DualId => Keypad::DualId,
            opkey_core::Keypad::K300 => Keypad::K300,
            opkey_core::Keypad::None => Keypad::None,
        }
    }
}
