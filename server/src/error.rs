//! The server's two error types: [`ServerError`] for starting up, [`ApiError`] for a
//! request. An `ApiError` knows its HTTP status and its stable [`ErrorCode`]; the
//! client sees `{"error":{"code","message"}}` and the message says what to do next.
//! Internal failures are logged here with their cause and reach the client only as a
//! generic `internal` error. No message ever carries a token, invite secret or code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opkey_protocol::api::{ErrorBody, ErrorCode, ErrorDetail};
use opkey_protocol::model::SlotClass;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    OpenDatabase {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot prepare the database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot use the issuer key file {path}: {source}")]
    IssuerKey {
        path: std::path::PathBuf,
        source: crate::digital_key::IssuerKeyError,
    },
    #[error("cannot use the secrets key file {path}: {source}")]
    SecretsKey {
        path: std::path::PathBuf,
        source: crate::keypad::SecretsKeyError,
    },
}

/// Which step refused a signature: redeeming answers 400, opening a session and a
/// machine's requests 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedStep {
    Redeem,
    Session,
    MachineUsage,
    MachineKeypad,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A body field or parameter is invalid.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {limit_mib} MiB; split the file and upload the parts")]
    PayloadTooLarge { limit_mib: usize },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "Machine '{machine_name}' ({machine_id}) already holds {limit} {class}, the most one device can store; delete or end another {singular} key on it first.",
        limit = SlotClass::DEVICE_LIMIT,
        class = class.label(),
        singular = singular(*class)
    )]
    DeviceLimitReached {
        machine_id: String,
        machine_name: String,
        class: SlotClass,
    },
    /// Every keypad slot of a machine is held by a live Rolling PIN key.
    #[error(
        "Machine '{machine_name}' ({machine_id}) already holds {max} Rolling PIN keys, one in each keypad slot, \
         the most one keypad can store; delete or end another Rolling PIN key on it first.",
        max = opkey_protocol::pin::MAX_SLOT
    )]
    KeypadSlotsFull {
        machine_id: String,
        machine_name: String,
    },
    /// Each machine has a free slot, but no one slot is free on all of them.
    #[error(
        "no keypad slot is free on all of this key's machines at once ({machines}); a Rolling PIN key has \
         the same slot on every machine: create one key per machine, or delete or end another Rolling \
         PIN key on them first."
    )]
    NoCommonKeypadSlot { machines: String },
    /// The key has no Static PIN to show.
    #[error(
        "key {key_id} is a {} key: only Static PIN keys have a PIN to show",
        access_type.label()
    )]
    NotStaticPin {
        key_id: String,
        access_type: opkey_protocol::AccessType,
    },
    #[error("no invite matches this link or code: check it, or ask your administrator for a new invite")]
    InviteNotFound,
    #[error("this invite has expired: ask your administrator to send a new one")]
    InviteExpired,
    #[error("this invite was already used by another phone: ask your administrator to send a new one")]
    InviteUsed,
    #[error(
        "this invite was withdrawn (a newer invite was sent, or the operator was removed): use the latest invite"
    )]
    InviteRevoked,
    #[error("the session challenge is unknown, used or expired: request a new challenge")]
    ChallengeExpired,
    #[error("the access token is unknown or expired: open a new session")]
    SessionExpired,
    #[error(
        "this phone is no longer enrolled (it was replaced by a new invite or the operator was removed): redeem a new invite"
    )]
    PhoneRevoked,
    #[error("{}", match .0 {
        SignedStep::Redeem => "the signature does not verify against phone_public_key over the redeem message: sign opkey-redeem-v1, the invite secret and the public key with the phone key",
        SignedStep::Session => "the signature does not verify against this phone's enrolled key: sign opkey-session-v1, the phone id and the challenge with the enrolled key",
        SignedStep::MachineUsage => "the x-opkey-machine-signature header does not verify against the machine's registered BLE public key: sign opkey-machine-usage-v1, a newline and the hex SHA-256 of the exact body with the machine key (ECDSA P-256, raw r||s, base64url)",
        SignedStep::MachineKeypad => "the x-opkey-machine-signature header does not verify against the machine's registered BLE public key: sign opkey-machine-keypad-v1, a newline and the hex SHA-256 of the exact body with the machine key (ECDSA P-256, raw r||s, base64url)",
    })]
    BadSignature(SignedStep),
    #[error("cursor {cursor} is ahead of the server (latest change {latest}): sync again from cursor 0")]
    BadCursor { cursor: u64, latest: u64 },
    #[error("{0}")]
    UnreadableFile(String),
    /// The message says what was done anyway and how to re-send.
    #[error("{0}")]
    SmsFailed(String),
    #[error("too many failed attempts from this address: wait {retry_after_secs} seconds and try again")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("{0}")]
    Internal(String),
}

fn singular(class: SlotClass) -> &'static str {
    match class {
        SlotClass::StaticPin => "static PIN",
        SlotClass::KeyCard => "key card",
        SlotClass::IpafCard => "IPAF card",
    }
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::InvalidField { .. }
            | ApiError::InvalidRequest(_)
            | ApiError::PayloadTooLarge { .. } => ErrorCode::InvalidRequest,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::DeviceLimitReached { .. }
            | ApiError::KeypadSlotsFull { .. }
            | ApiError::NoCommonKeypadSlot { .. } => ErrorCode::DeviceLimitReached,
            ApiError::NotStaticPin { .. } => ErrorCode::Conflict,
            ApiError::InviteNotFound => ErrorCode::InviteNotFound,
            ApiError::InviteExpired => ErrorCode::InviteExpired,
            ApiError::InviteUsed => ErrorCode::InviteUsed,
            ApiError::InviteRevoked => ErrorCode::InviteRevoked,
            ApiError::ChallengeExpired => ErrorCode::ChallengeExpired,
            ApiError::SessionExpired => ErrorCode::SessionExpired,
            ApiError::PhoneRevoked => ErrorCode::PhoneRevoked,
            ApiError::BadSignature(_) => ErrorCode::BadSignature,
            ApiError::BadCursor { .. } => ErrorCode::BadCursor,
            ApiError::UnreadableFile(_) => ErrorCode::UnreadableFile,
            ApiError::SmsFailed(_) => ErrorCode::SmsFailed,
            ApiError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            ApiError::Database(_) | ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_)
            | ApiError::ChallengeExpired
            | ApiError::SessionExpired
            | ApiError::BadSignature(
                SignedStep::Session | SignedStep::MachineUsage | SignedStep::MachineKeypad,
            ) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::PhoneRevoked => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::InviteNotFound => StatusCode::NOT_FOUND,
            ApiError::InvalidField { .. }
            | ApiError::InvalidRequest(_)
            | ApiError::BadSignature(SignedStep::Redeem)
            | ApiError::BadCursor { .. }
            | ApiError::UnreadableFile(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_)
            | ApiError::DeviceLimitReached { .. }
            | ApiError::KeypadSlotsFull { .. }
            | ApiError::NoCommonKeypadSlot { .. }
            | ApiError::NotStaticPin { .. }
            | ApiError::InviteUsed => StatusCode::CONFLICT,
            ApiError::InviteExpired | ApiError::InviteRevoked => StatusCode::GONE,
            ApiError::SmsFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees. Internal causes stay in the server log.
    fn public_message(&self) -> String {
        match self {
            ApiError::Database(_) | ApiError::Internal(_) => {
                "internal error; the server log has the details".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<ring::error::Unspecified> for ApiError {
    fn from(_: ring::error::Unspecified) -> Self {
        ApiError::Internal("the system random number generator failed".to_owned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// Every handler returns this.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_limit_message_names_the_machine_and_what_to_do() {
        let e = ApiError::DeviceLimitReached {
            machine_id: "mch_abc".into(),
            machine_name: "Excavator 7".into(),
            class: SlotClass::StaticPin,
        };
        assert_eq!(
            e.to_string(),
            "Machine 'Excavator 7' (mch_abc) already holds 495 static PINs, the most one device can \
             store; delete or end another static PIN key on it first."
        );
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn internal_causes_are_not_shown_to_clients() {
        let e = ApiError::Internal("disk full at /var/secret".into());
        assert!(!e.public_message().contains("/var/secret"));
        assert_eq!(e.code(), ErrorCode::Internal);
    }
}
