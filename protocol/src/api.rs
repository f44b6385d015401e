//! JSON bodies of the backend's two HTTP APIs. The server serialises them, the phone
//! core and the CLI deserialise them; one definition keeps both ends honest.
//!
//! - Admin API under `/admin/v1`, `Authorization: Bearer <admin token>`. Roles `admin`
//!   and `fleet-admin` manage access; any other role gets 403 `forbidden`.
//! - Operator (phone) API under `/v1`: redeem an invite, open a session by signing a
//!   challenge, sync keys by cursor.
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with a stable
//! [`ErrorCode`] that clients act on; the message is for people.

use crate::model::{AccessType, Key, Keypad, Machine, Operator, Organization, TelematicsUnit};
use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

// Schema patterns of request fields say exactly what the server accepts, so that an API
// fuzzer finds no gap between the two: the server trims whitespace (Rust's
// `char::is_whitespace`, spelt out as a character class) before it checks a length, so a
// bounded text reads `^W*(N([\s\S]{0,max-2}N)?)?W*$` (W whitespace, N anything else).

/// Header with which the bootstrap admin picks the organization it acts in.
pub const ORGANIZATION_HEADER: &str = "x-opkey-organization";

// ---------------------------------------------------------------------------------------
// Errors

/// Stable, machine-readable error codes. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or a parameter is invalid; the message names the field.
    InvalidRequest,
    /// No or unknown credentials.
    Unauthorized,
    /// The credentials are valid but the role may not do this.
    Forbidden,
    NotFound,
    /// The request conflicts with existing data (e.g. duplicate phone in the organization).
    Conflict,
    /// A device list is full (495 static PINs, key cards or IPAF cards).
    DeviceLimitReached,
    /// No invite matches this token or code.
    InviteNotFound,
    InviteExpired,
    /// The invite was already redeemed by another phone.
    InviteUsed,
    /// The invite was withdrawn (the operator was re-invited or deleted).
    InviteRevoked,
    /// The session challenge is unknown, used or expired: ask for a new one.
    ChallengeExpired,
    /// The access token is unknown or expired: open a new session.
    SessionExpired,
    /// This phone is no longer bound to an operator (re-invited elsewhere or deleted).
    PhoneRevoked,
    /// The signature does not verify against the enrolled phone key.
    BadSignature,
    /// The sync cursor is from the future or otherwise unusable: sync from zero.
    BadCursor,
    /// The uploaded import file could not be read at all.
    UnreadableFile,
    /// The SMS gateway refused or could not be reached.
    SmsFailed,
    /// Too many failed attempts (e.g. guessing invite codes): wait and try again.
    TooManyRequests,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Admin API

/// Admin roles. Only `admin` and `fleet-admin` may manage access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AdminRole {
    Admin,
    FleetAdmin,
    /// Sees the fleet in the backend but may not manage access.
    Viewer,
}

impl AdminRole {
    pub fn may_manage_access(self) -> bool {
        matches!(self, AdminRole::Admin | AdminRole::FleetAdmin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateOrganization {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
}

/// `POST /admin/v1/users`: an admin user of one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateAdminUser {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
    pub role: AdminRole,
    /// Defaults to the organization the caller acts in.
    #[serde(default)]
    pub organization_id: Option<String>,
}

/// The created admin user. `token` is shown once and stored only as a digest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminUserCreated {
    pub id: String,
    pub name: String,
    pub role: AdminRole,
    pub organization_id: String,
    pub token: String,
}

/// `GET /admin/v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminIdentity {
    pub name: String,
    pub role: AdminRole,
    pub organization_id: String,
}

/// `POST /admin/v1/operators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateOperator {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
    /// Any common way of writing an international number (`+45 12 34 56 78`,
    /// `0045 12345678`, `+1 (555) 010-0199`): 8 to 15 digits; stored as E.164.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(\+|00)[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
            example = "+45 12 34 56 78"
        )
    )]
    pub phone: String,
    #[serde(default)]
    pub access_type: Option<AccessType>,
    /// Send an SMS invitation right away.
    #[serde(default)]
    pub send_invite: bool,
}

/// `PATCH /admin/v1/operators/{id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EditOperator {
    #[serde(default)]
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: Option<String>,
    /// As in [`CreateOperator::phone`].
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(\+|00)[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
            example = "+45 12 34 56 78"
        )
    )]
    pub phone: Option<String>,
    #[serde(default)]
    pub access_type: Option<AccessType>,
}

/// An operator as the admin sees it, with the state of their latest invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OperatorView {
    #[serde(flatten)]
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<InviteSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum InviteStatus {
    Pending,
    Redeemed,
    Expired,
    Revoked,
}

/// An invite without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct InviteSummary {
    pub id: String,
    pub status: InviteStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The SMS that carried it, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_id: Option<String>,
}

/// One problem found in an import file. `row` counts from 1 at the header line, as a
/// spreadsheet shows it, so the first operator is row 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportProblem {
    pub row: u32,
    pub field: String,
    pub message: String,
}

/// One operator row read from an import file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportRow {
    pub row: u32,
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub access_type: Option<AccessType>,
    /// False when the row has problems; such a row is never imported.
    pub valid: bool,
}

/// `POST /admin/v1/operators/import/preview` (body: the CSV or XLSX file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportPreview {
    pub rows: Vec<ImportRow>,
    pub problems: Vec<ImportProblem>,
}

/// `POST /admin/v1/operators/import` (body: the file; query `rows=2,3,5` selects rows,
/// `invite=true` sends SMS invites to the imported operators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportReport {
    pub imported: Vec<ImportedOperator>,
    /// Rows that were selected (or, with no selection, present) but not imported.
    pub skipped: Vec<ImportProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportedOperator {
    pub row: u32,
    pub operator: OperatorView,
}

/// `POST /admin/v1/machines`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateMachine {
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: String,
    #[serde(default)]
    /// At most 100 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,98}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub serial: String,
    /// Defaults to TU600.
    #[serde(default)]
    pub unit_type: Option<TelematicsUnit>,
    /// Defaults to `none`.
    #[serde(default)]
    pub keypad: Option<Keypad>,
    /// SEC1 uncompressed P-256 public key, base64url; empty or left out for a machine
    /// whose key is registered later.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub ble_public_key: Option<String>,
}

/// `PATCH /admin/v1/machines/{id}`: fields left out stay as they are. A new
/// `ble_public_key` replaces the registered one; phones learn it by sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EditMachine {
    #[serde(default)]
    /// 1 to 200 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,198}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub name: Option<String>,
    #[serde(default)]
    /// At most 100 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,98}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub serial: Option<String>,
    /// SEC1 uncompressed P-256 public key, base64url (leave the field out to keep the
    /// registered one).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048][\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub ble_public_key: Option<String>,
}

/// `POST /admin/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateKey {
    /// Set for a personal key; leave out for a non-personal key.
    #[serde(default)]
    pub operator_id: Option<String>,
    /// At least one machine of the organization, each once (`uniqueItems`, set in the
    /// server's OpenAPI document).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub machine_ids: Vec<String>,
    pub access_type: AccessType,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
    #[serde(default)]
    /// At most 1000 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,998}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub description: String,
    /// Required for card access types.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub card_id: Option<String>,
    /// Static PIN keys: the PIN (4–8 digits, unique on each of the key's machines);
    /// left out, the backend generates one. Refused for other access types.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{4,8}$"))]
    pub static_pin: Option<String>,
    /// Rolling PIN keys: HMAC algorithm (default sha256). Refused for other access types.
    #[serde(default)]
    pub pin_algorithm: Option<crate::pin::PinAlgorithm>,
    /// Rolling PIN keys: code digits, 6–10 (default 6).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 6, maximum = 10))]
    pub pin_digits: Option<u8>,
    /// Rolling PIN keys: seconds per PIN, 30–3600 (default 60).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 30, maximum = 3600))]
    pub pin_period_s: Option<u32>,
}

/// `PATCH /admin/v1/keys/{id}`: only the end date and the description may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EditKey {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_to: Option<OffsetDateTime>,
    #[serde(default)]
    /// At most 1000 characters; surrounding whitespace is trimmed.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]([\s\S]{0,998}[^\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)?[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
        )
    )]
    pub description: Option<String>,
}

/// A message the dev SMS gateway kept in its outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SmsMessage {
    pub id: String,
    pub recipient: PhoneNumber,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

// ---------------------------------------------------------------------------------------
// Operator (phone) API

/// `POST /v1/invites/redeem`. Exactly one of `token` and `code` is set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RedeemRequest {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    /// The phone's P-256 public key, SEC1 uncompressed, base64url.
    pub phone_public_key: String,
    /// DER ECDSA signature over [`crate::auth::redeem_message`], base64url.
    pub signature: String,
    /// A name for the phone the admin will see ("Pixel 8").
    #[serde(default)]
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OperatorProfile {
    pub id: String,
    pub name: String,
    pub phone: PhoneNumber,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RedeemResponse {
    /// The id of this phone's binding; it signs sessions with it.
    pub phone_id: String,
    pub operator: OperatorProfile,
    pub organizations: Vec<Organization>,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

/// `POST /v1/session/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChallengeRequest {
    pub phone_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChallengeResponse {
    /// 32 random bytes, base64url. Single use.
    pub challenge: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

/// `POST /v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionRequest {
    pub phone_id: String,
    pub challenge: String,
    /// DER ECDSA signature over [`crate::auth::session_message`], base64url.
    pub signature: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionResponse {
    /// Bearer token for the operator API. Short-lived; keep it in memory only.
    pub access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
}

/// Default and largest page sizes of `GET /v1/sync`.
pub const SYNC_PAGE_DEFAULT: u32 = 2000;
pub const SYNC_PAGE_MAX: u32 = 5000;

/// `GET /v1/sync?cursor=N&limit=M`: what changed for this phone's operator since
/// `cursor` (0 for everything). Apply all pages of one sync together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SyncResponse {
    /// Pass this as `cursor` next time.
    pub cursor: u64,
    /// More changes wait: fetch again with the new cursor before applying.
    pub has_more: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub server_time: OffsetDateTime,
    pub operator: OperatorProfile,
    /// Every organization the operator belongs to (always complete).
    pub organizations: Vec<Organization>,
    /// Keys created or changed since the cursor (personal keys of this operator).
    pub keys: Vec<Key>,
    /// Keys deleted since the cursor.
    pub deleted_key_ids: Vec<String>,
    /// Machines that upserted keys refer to, and machines changed since the cursor that
    /// any of the operator's keys refer to.
    pub machines: Vec<Machine>,
    /// Digital Key grants (PROTOCOL.md 2.2) issued to this phone since the cursor: new keys,
    /// edits, and renewals of grants close to their end. A grant replaces any older grant
    /// of the same key and machines; grants of deleted keys go with the key.
    #[serde(default)]
    pub grants: Vec<GrantRecord>,
    /// The latest revocation list (PROTOCOL.md 2.3) of each machine the operator's keys
    /// open, when it changed since the cursor.
    #[serde(default)]
    pub revocations: Vec<RevocationRecord>,
    /// The backend's grant-signing public key (SEC1 uncompressed, base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_public_key: Option<String>,
    /// PIN secrets of upserted Rolling PIN and personal Static PIN keys (same delta as
    /// `keys`; a deleted key's secret goes with the key). The phone keeps them encrypted.
    #[serde(default)]
    pub pin_secrets: Vec<PinSecretRecord>,
}

/// The secret half of a PIN key, for the phone that shows it. Exactly one of `seed`
/// (Rolling PIN) and `static_pin` (personal Static PIN) is set. `Debug` hides both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PinSecretRecord {
    pub key_id: String,
    /// The key version this secret belongs to.
    pub version: u64,
    /// Rolling PIN seed, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// A personal Static PIN, shown to its operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_pin: Option<String>,
}

impl std::fmt::Debug for PinSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinSecretRecord")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("seed", &self.seed.as_ref().map(|_| "<redacted>"))
            .field("static_pin", &self.static_pin.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `GET /admin/v1/keys/{id}/static-pin`: a Static PIN key's PIN, for the admin who hands it
/// out. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct StaticPinView {
    pub key_id: String,
    pub static_pin: String,
}

impl std::fmt::Debug for StaticPinView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticPinView")
            .field("key_id", &self.key_id)
            .field("static_pin", &"<redacted>")
            .finish()
    }
}

/// Everything a machine's keypad and card reader check offline (PROTOCOL.md Part 3): its
/// Rolling PIN keys with seeds, Static PINs and cards. **Secret**: delivered only in the
/// provisioning bundle and to the machine itself (`POST /machine/v1/keypad`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeypadTable {
    pub machine_id: String,
    /// Rises whenever the table changes; a machine keeps the highest it has seen.
    pub version: u64,
    #[serde(default)]
    pub rolling_pins: Vec<KeypadRollingPin>,
    #[serde(default)]
    pub static_pins: Vec<KeypadStaticPin>,
    #[serde(default)]
    pub cards: Vec<KeypadCard>,
}

impl std::fmt::Debug for KeypadTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeypadTable")
            .field("machine_id", &self.machine_id)
            .field("version", &self.version)
            .field("rolling_pins", &self.rolling_pins.len())
            .field("static_pins", &self.static_pins.len())
            .field("cards", &self.cards.len())
            .finish()
    }
}

/// Who a keypad entry stands for: a key, its operator (personal keys) and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeypadHolder {
    pub key_id: String,
    /// `None` for a non-personal key.
    #[serde(default)]
    pub operator_id: Option<String>,
    /// The key's version (revocation lists refuse serials below their `min_serial`).
    pub serial: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
}

/// One Rolling PIN key on a keypad.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeypadRollingPin {
    #[serde(flatten)]
    pub holder: KeypadHolder,
    #[serde(flatten)]
    pub pin: crate::model::RollingPinInfo,
    /// base64url. Secret.
    pub seed: String,
}

impl std::fmt::Debug for KeypadRollingPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeypadRollingPin")
            .field("holder", &self.holder)
            .field("pin", &self.pin)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// One Static PIN on a keypad.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeypadStaticPin {
    #[serde(flatten)]
    pub holder: KeypadHolder,
    /// 4–8 digits. Secret.
    pub static_pin: String,
}

impl std::fmt::Debug for KeypadStaticPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeypadStaticPin")
            .field("holder", &self.holder)
            .field("static_pin", &"<redacted>")
            .finish()
    }
}

/// One card (Primary Key Card, Key Card or IPAF Card) the card reader accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeypadCard {
    #[serde(flatten)]
    pub holder: KeypadHolder,
    pub access_type: AccessType,
    pub card_id: String,
}

/// The domain-separation prefix of a machine's keypad-table request signature.
pub const MACHINE_KEYPAD_CONTEXT: &str = "opkey-machine-keypad-v1";

/// `POST /machine/v1/keypad`, signed like a usage upload (header
/// [`MACHINE_SIGNATURE_HEADER`], over `opkey-machine-keypad-v1\n` ‖ hex SHA-256 of the
/// body): the machine asks for its keypad table. Answers 200 with a [`KeypadTable`], or
/// 204 when `known_version` is already the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MachineKeypadRequest {
    pub machine_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// 16 random bytes, base64url, never reused.
    pub nonce: String,
    /// The table version the machine holds (0: none).
    #[serde(default)]
    pub known_version: u64,
}

/// The bytes a machine signs for a keypad-table request.
pub fn machine_keypad_message(body: &[u8]) -> Vec<u8> {
    format!("{MACHINE_KEYPAD_CONTEXT}\n{}", crate::encoding::sha256_hex(body)).into_bytes()
}

/// One issued grant, as the phone stores and presents it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GrantRecord {
    pub key_id: String,
    /// The key's version the grant was issued for.
    pub serial: u32,
    /// The machines this grant opens (at most 8 per grant).
    pub machine_ids: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_to: OffsetDateTime,
    /// The encoded, issuer-signed grant, base64url.
    pub grant: String,
}

/// One machine's latest revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RevocationRecord {
    pub machine_id: String,
    pub sequence: u32,
    /// The encoded, issuer-signed list, base64url.
    pub list: String,
}

/// `GET /admin/v1/machines/{id}/provisioning`: what a telematics unit needs to verify
/// grants offline, and its keypad table when it has a keypad (secret, see `keypad`). The
/// machine's private key never leaves the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MachineProvisioning {
    pub machine_id: String,
    pub name: String,
    /// The backend's grant-signing public key (SEC1 uncompressed, base64url).
    pub issuer_public_key: String,
    /// The machine's registered public key, so the unit can check it was given the right bundle.
    pub machine_public_key: String,
    /// Seconds a Hello challenge stays valid.
    pub challenge_lifetime_s: u16,
    /// Seconds after an unlock before the relay locks again if the engine is not started.
    pub relock_after_s: u16,
    /// The latest revocation list for this machine, base64url, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocations: Option<String>,
    /// Where the unit reports its usage sessions (`POST {server_url}machine/v1/usage`) when
    /// it is online; `None` for a unit that only works offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// The keypad table at provisioning time, for a machine with a keypad. **Secret** (PIN
    /// seeds and Static PINs): keep the bundle file like the machine key, readable by the
    /// unit only. The unit refreshes it with `POST /machine/v1/keypad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypad: Option<KeypadTable>,
}

/// The header of `POST /machine/v1/usage` that carries the machine's signature:
/// ECDSA P-256 SHA-256, raw `r ‖ s` (64 bytes), base64url, over
/// [`machine_usage_message`] of the exact request body.
pub const MACHINE_SIGNATURE_HEADER: &str = "x-opkey-machine-signature";
/// The domain-separation prefix of a machine's usage upload signature.
pub const MACHINE_USAGE_CONTEXT: &str = "opkey-machine-usage-v1";
/// Most sessions in one `POST /machine/v1/usage`.
pub const MACHINE_USAGE_SESSIONS_MAX: usize = 500;
/// `ended_by` of a session still in progress.
pub const SESSION_OPEN: &str = "open";

/// The bytes a machine signs for a usage upload:
/// `opkey-machine-usage-v1\n` ‖ lower-case hex SHA-256 of the body.
pub fn machine_usage_message(body: &[u8]) -> Vec<u8> {
    format!("{MACHINE_USAGE_CONTEXT}\n{}", crate::encoding::sha256_hex(body)).into_bytes()
}

/// `POST /machine/v1/usage`: usage sessions a telematics unit reports itself, signed with
/// its machine key (header [`MACHINE_SIGNATURE_HEADER`]). Idempotent per
/// (`machine_id`, `usage_session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MachineUsageUpload {
    pub machine_id: String,
    /// The machine's clock when it sent the upload; refused more than 24 h from the server's.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// 16 random bytes, base64url, never reused: a replayed upload is refused.
    pub nonce: String,
    /// At most [`MACHINE_USAGE_SESSIONS_MAX`].
    pub sessions: Vec<MachineUsageSession>,
}

/// One usage session (from unlock to relock) as the machine recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MachineUsageSession {
    /// The machine's usage-session counter (never reused by one machine).
    pub usage_session: u32,
    pub key_id: String,
    /// The operator of a personal key; `None` for a non-personal key.
    #[serde(default)]
    pub operator_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// `None` while open, or when the end time is unknown (a restart interrupted it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it ended: `timeout`, `command`, `engine_stopped`, `next_unlock`, `restart`; or
    /// [`SESSION_OPEN`] while it goes on.
    pub ended_by: String,
}

/// What a machine upload did: `accepted` sessions are new, `updated` were stored open and
/// are now closed, `duplicates` were already stored as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MachineUsageReceipt {
    pub accepted: u32,
    pub updated: u32,
    pub duplicates: u32,
}

/// Most events in one `POST /v1/events`.
pub const USAGE_EVENTS_MAX: usize = 500;
/// Longest client-generated event id.
pub const USAGE_EVENT_ID_MAX_CHARS: usize = 64;

/// What a usage event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageEventKind {
    /// The phone asked a machine to unlock.
    UnlockAttempt,
    /// The phone asked a machine to lock.
    LockAttempt,
    /// A usage session the machine reported (from unlock to relock).
    UsageSession,
}

/// One thing that happened at a machine, as the phone saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageEvent {
    /// Client-generated idempotency key (at most 64 characters), unique per phone: an
    /// upload that repeats it is counted as a duplicate and not stored again.
    pub id: String,
    pub kind: UsageEventKind,
    #[serde(default)]
    pub key_id: Option<String>,
    pub machine_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// E.g. `unlocked`, `denied:expired`, `not-in-range`.
    pub outcome: String,
    /// The machine's usage-session counter, when it reported one.
    #[serde(default)]
    pub usage_session: Option<u32>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

/// `POST /v1/events`: at most [`USAGE_EVENTS_MAX`] events, stored in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageEventsUpload {
    pub events: Vec<UsageEvent>,
}

/// What an upload did: `accepted` events were stored now, `duplicates` were already
/// stored (or repeated within the upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageEventsReceipt {
    pub accepted: u32,
    pub duplicates: u32,
}

/// Who reported a usage event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// An operator's phone (`POST /v1/events`).
    #[default]
    Phone,
    /// The machine's telematics unit itself (`POST /machine/v1/usage`).
    Machine,
}

/// `GET /admin/v1/events`: a stored event, with who sent it and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UsageEventView {
    #[serde(flatten)]
    pub event: UsageEvent,
    /// The operator whose phone uploaded it; for a machine's session, the operator of its
    /// personal key (empty for a non-personal key).
    pub operator_id: String,
    /// Empty for an event the machine reported.
    pub phone_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(default)]
    pub source: EventSource,
}

// Bodies that carry secrets print without them.

impl std::fmt::Debug for AdminUserCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminUserCreated")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("organization_id", &self.organization_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for RedeemRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedeemRequest")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("phone_public_key", &self.phone_public_key)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionResponse")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("server_time", &self.server_time)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_bodies_with_secrets_hides_them() {
        let redeem = RedeemRequest {
            token: Some("SECRET-TOKEN".into()),
            code: None,
            phone_public_key: "pk".into(),
            signature: "SECRET-SIG".into(),
            device_name: "Pixel".into(),
        };
        let text = format!("{redeem:?}");
        assert!(!text.contains("SECRET"), "{text}");
        let session = SessionResponse {
            access_token: "SECRET-ACCESS".into(),
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
            server_time: time::OffsetDateTime::UNIX_EPOCH,
        };
        assert!(!format!("{session:?}").contains("SECRET"));
        let user = AdminUserCreated {
            id: "usr_1".into(),
            name: "Dana".into(),
            role: AdminRole::FleetAdmin,
            organization_id: "org_1".into(),
            token: "SECRET-ADMIN".into(),
        };
        assert!(!format!("{user:?}").contains("SECRET"));
    }
}
