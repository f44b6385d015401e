//! The fleet domain: who may use which machine, how, and when.
//!
//! An [`Organization`] is a customer (a rental company, a contractor). An [`Operator`] is
//! a person, identified by a phone number, who may belong to several organizations. A
//! [`Machine`] is an asset with a telematics unit. A [`Key`] grants access to one or more
//! machines of one organization, by one access type, between From and To; a *personal*
//! key belongs to exactly one operator, a non-personal key to none.

use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// How an operator gets onto a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AccessType {
    /// The phone unlocks the machine over Bluetooth.
    DigitalKey,
    /// A PIN that rotates on a fixed period, typed on the machine's keypad.
    RollingPin,
    /// A fixed PIN typed on the keypad.
    StaticPin,
    /// A key card that can also enroll other cards on the device.
    PrimaryKeyCard,
    /// An RFID key card presented to the reader.
    KeyCard,
    /// An IPAF (powered access) licence card presented to the reader.
    IpafCard,
}

impl AccessType {
    pub const ALL: [AccessType; 6] = [
        AccessType::DigitalKey,
        AccessType::RollingPin,
        AccessType::StaticPin,
        AccessType::PrimaryKeyCard,
        AccessType::KeyCard,
        AccessType::IpafCard,
    ];

    /// The wire and command-line name, e.g. `digital-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::DigitalKey => "digital-key",
            AccessType::RollingPin => "rolling-pin",
            AccessType::StaticPin => "static-pin",
            AccessType::PrimaryKeyCard => "primary-key-card",
            AccessType::KeyCard => "key-card",
            AccessType::IpafCard => "ipaf-card",
        }
    }

    /// The name people read in the apps, e.g. "Digital Key".
    pub fn label(self) -> &'static str {
        match self {
            AccessType::DigitalKey => "Digital Key",
            AccessType::RollingPin => "Rolling PIN",
            AccessType::StaticPin => "Static PIN",
            AccessType::PrimaryKeyCard => "Primary Key Card",
            AccessType::KeyCard => "Key Card",
            AccessType::IpafCard => "IPAF Card",
        }
    }

    /// Card access types carry a card id.
    pub fn is_card(self) -> bool {
        matches!(
            self,
            AccessType::PrimaryKeyCard | AccessType::KeyCard | AccessType::IpafCard
        )
    }

    /// The per-device storage class this key counts against, if the device's list is
    /// bounded: static PINs, key cards (primary and regular) and IPAF cards, 495 each.
    pub fn device_slot_class(self) -> Option<SlotClass> {
        match self {
            AccessType::StaticPin => Some(SlotClass::StaticPin),
            AccessType::PrimaryKeyCard | AccessType::KeyCard => Some(SlotClass::KeyCard),
            AccessType::IpafCard => Some(SlotClass::IpafCard),
            AccessType::DigitalKey | AccessType::RollingPin => None,
        }
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An access type name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown access type '{0}': use digital-key, rolling-pin, static-pin, primary-key-card, key-card or ipaf-card"
)]
pub struct UnknownAccessType(pub String);

impl FromStr for AccessType {
    type Err = UnknownAccessType;
    /// Accepts the wire name (`digital-key`) or the label (`Digital Key`), any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace([' ', '_'], "-");
        AccessType::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| UnknownAccessType(s.to_owned()))
    }
}

/// The bounded lists a device keeps: at most [`SlotClass::DEVICE_LIMIT`] entries each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotClass {
    StaticPin,
    KeyCard,
    IpafCard,
}

impl SlotClass {
    /// How many entries of one class a telematics unit stores.
    pub const DEVICE_LIMIT: usize = 495;

    pub fn label(self) -> &'static str {
        match self {
            SlotClass::StaticPin => "static PINs",
            SlotClass::KeyCard => "key cards",
            SlotClass::IpafCard => "IPAF cards",
        }
    }

    pub fn access_types(self) -> &'static [AccessType] {
        match self {
            SlotClass::StaticPin => &[AccessType::StaticPin],
            SlotClass::KeyCard => &[AccessType::PrimaryKeyCard, AccessType::KeyCard],
            SlotClass::IpafCard => &[AccessType::IpafCard],
        }
    }
}

/// The telematics unit fitted to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum TelematicsUnit {
    #[serde(rename = "TU600")]
    Tu600,
    #[serde(rename = "TU700")]
    Tu700,
}

impl TelematicsUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            TelematicsUnit::Tu600 => "TU600",
            TelematicsUnit::Tu700 => "TU700",
        }
    }
}

impl FromStr for TelematicsUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TU600" => Ok(TelematicsUnit::Tu600),
            "TU700" => Ok(TelematicsUnit::Tu700),
            _ => Err(format!("unknown telematics unit '{s}': use TU600 or TU700")),
        }
    }
}

/// The keypad fitted to a machine, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Keypad {
    /// DualID keypad and card reader (TU600).
    #[serde(rename = "dual-id")]
    DualId,
    /// K300 keypad (TU700).
    K300,
    None,
}

impl Keypad {
    pub fn as_str(self) -> &'static str {
        match self {
            Keypad::DualId => "dual-id",
            Keypad::K300 => "k300",
            Keypad::None => "none",
        }
    }
}

impl FromStr for Keypad {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
            "dual-id" | "dualid" => Ok(Keypad::DualId),
            "k300" => Ok(Keypad::K300),
            "none" | "" => Ok(Keypad::None),
            _ => Err(format!("unknown keypad '{s}': use dual-id, k300 or none")),
        }
    }
}

/// A customer of the fleet backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// A person who operates machines. The phone number identifies them across
/// organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub phone: PhoneNumber,
    /// The access type the admin chose for this operator when creating them, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_type: Option<AccessType>,
    /// Organizations this operator belongs to.
    pub organization_ids: Vec<String>,
    /// True when a phone has redeemed an invite and is currently bound to this operator.
    pub enrolled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An asset with a telematics unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Machine {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    #[serde(default)]
    pub serial: String,
    pub unit_type: TelematicsUnit,
    pub keypad: Keypad,
    /// The machine's P-256 public key (SEC1 uncompressed, base64url), once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ble_public_key: Option<String>,
}

/// The validity window of a key: usable from `valid_from` (inclusive) until `valid_to`
/// (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Validity {
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
}

/// What a key means at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Not valid yet: From is in the future.
    Upcoming,
    /// Usable now.
    Active,
    /// To has passed.
    Expired,
    /// Withdrawn by an admin; never usable again.
    Revoked,
}

impl KeyState {
    /// The state of a key with this window and revocation flag at `now`.
    pub fn at(validity: &Validity, revoked: bool, now: OffsetDateTime) -> Self {
        if revoked {
            KeyState::Revoked
        } else if now < validity.valid_from {
            KeyState::Upcoming
        } else if now >= validity.valid_to {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Upcoming => "upcoming",
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }

    /// Only an active key may be offered to the operator as usable.
    pub fn is_usable(self) -> bool {
        self == KeyState::Active
    }
}

/// Access to machines of one organization by one access type, for a window of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Key {
    pub id: String,
    pub organization_id: String,
    pub access_type: AccessType,
    /// The operator a personal key belongs to; `None` for a non-personal key.
    #[serde(default)]
    pub operator_id: Option<String>,
    /// The machines this key opens (at least one).
    pub machine_ids: Vec<String>,
    #[serde(flatten)]
    pub validity: Validity,
    #[serde(default)]
    pub description: String,
    /// Changes on every edit; a phone or machine holding an older version is out of date.
    pub version: u64,
    #[serde(default)]
    pub revoked: bool,
    /// The card's id, for card access types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// Where a Rolling PIN key sits on keypads and how its codes are made (not secret; the
    /// seed travels separately, see `api::PinSecretRecord`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_pin: Option<RollingPinInfo>,
}

/// A Rolling PIN key's public settings (PROTOCOL.md Part 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RollingPinInfo {
    /// The key's keypad slot, the same on every machine of the key (1 to 495).
    #[cfg_attr(feature = "openapi", schema(value_type = u16))]
    pub slot: crate::pin::KeypadSlot,
    pub algorithm: crate::pin::PinAlgorithm,
    pub digits: u8,
    pub period_s: u32,
}

impl RollingPinInfo {
    pub fn spec(&self) -> crate::pin::PinSpec {
        crate::pin::PinSpec {
            algorithm: self.algorithm,
            digits: self.digits,
            period_s: self.period_s,
        }
    }
}

impl Key {
    pub fn is_personal(&self) -> bool {
        self.operator_id.is_some()
    }

    pub fn state_at(&self, now: OffsetDateTime) -> KeyState {
        KeyState::at(&self.validity, self.revoked, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn window() -> Validity {
        Validity {
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_to: datetime!(2026-02-01 00:00 UTC),
        }
    }

    #[test]
    fn a_key_is_upcoming_then_active_then_expired() {
        let w = window();
        assert_eq!(
            KeyState::at(&w, false, datetime!(2025-12-31 23:59:59 UTC)),
            KeyState::Upcoming
        );
        assert_eq!(
            KeyState::at(&w, false, datetime!(2026-01-01 00:00 UTC)),
            KeyState::Active
        );
        assert_eq!(
            KeyState::at(&w, false, datetime!(2026-01-31 23:59:59 UTC)),
            KeyState::Active
        );
        assert_eq!(
            KeyState::at(&w, false, datetime!(2026-02-01 00:00 UTC)),
            KeyState::Expired
        );
    }

    #[test]
    fn a_revoked_key_is_never_usable() {
        let state = KeyState::at(&window(), true, datetime!(2026-01-15 00:00 UTC));
        assert_eq!(state, KeyState::Revoked);
        assert!(!state.is_usable());
    }

    #[test]
    fn access_types_parse_from_wire_names_and_labels() {
        for t in AccessType::ALL {
            assert_eq!(t.as_str().parse::<AccessType>().unwrap(), t);
            assert_eq!(t.label().parse::<AccessType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert!("master-key".parse::<AccessType>().is_err());
    }

    #[test]
    fn key_cards_and_primary_key_cards_share_one_device_list() {
        assert_eq!(
            AccessType::KeyCard.device_slot_class(),
            AccessType::PrimaryKeyCard.device_slot_class()
        );
        assert_eq!(AccessType::DigitalKey.device_slot_class(), None);
    }
}
