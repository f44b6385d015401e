//! Redeeming an invite binds the phone's public key to the operator. The phone signs the
//! redeem message with its new key (proof of possession); the server looks the invite up
//! by the digest of its token or normalised short code. A lost response can be retried:
//! the same key gets the same binding back.

use crate::app::AppState;
use crate::db::invites::{self, InviteRow};
use crate::db::phones::{self, PhoneRow};
use crate::db::{operators, organizations};
use crate::error::{ApiError, ApiResult, SignedStep};
use crate::extract::{ApiJson, ClientIp};
use crate::ids::{IdKind, new_id};
use axum::Json;
use axum::extract::State;
use opkey_protocol::api::{ErrorBody, OperatorProfile, RedeemRequest, RedeemResponse};
use opkey_protocol::auth::{check_public_key_shape, redeem_message, verify_phone_signature};
use opkey_protocol::encoding::{b64, sha256_hex, unb64};
use opkey_protocol::invite::{InviteToken, ShortCode};
use rusqlite::Connection;
use time::OffsetDateTime;

const MAX_DEVICE_NAME_CHARS: usize = 100;

/// How the invite is looked up.
enum Secret {
    Token(InviteToken),
    Code(ShortCode),
}

impl Secret {
    fn from_request(req: &RedeemRequest) -> Result<Self, ApiError> {
        let token = req.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let code = req.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        match (token, code) {
            (Some(token), None) => InviteToken::parse(token)
                .map(Secret::Token)
                .map_err(|e| ApiError::field("token", e.to_string())),
            (None, Some(code)) => ShortCode::parse(code)
                .map(Secret::Code)
                .map_err(|e| ApiError::field("code", e.to_string())),
            _ => Err(ApiError::InvalidRequest(
                "send exactly one of token (from the invite link) and code (typed by hand)".to_owned(),
            )),
        }
    }

    /// The text the phone signed: the token, or the normalised code.
    fn signed_text(&self) -> &str {
        match self {
            Secret::Token(t) => t.expose(),
            Secret::Code(c) => c.expose(),
        }
    }

    fn find(&self, conn: &Connection) -> rusqlite::Result<Option<InviteRow>> {
        let digest = sha256_hex(self.signed_text().as_bytes());
        match self {
            Secret::Token(_) => invites::by_token_digest(conn, &digest),
            Secret::Code(_) => invites::by_code_digest(conn, &digest),
        }
    }
}

fn response(
    conn: &Connection,
    phone_id: &str,
    operator_id: &str,
    now: OffsetDateTime,
) -> Result<RedeemResponse, ApiError> {
    let operator = operators::get_live(conn, operator_id)?.ok_or(ApiError::InviteRevoked)?;
    Ok(RedeemResponse {
        phone_id: phone_id.to_owned(),
        operator: OperatorProfile {
            id: operator.id,
            name: operator.name,
            phone: operator.phone,
        },
        organizations: organizations::of_operator(conn, operator_id)?,
        server_time: now,
    })
}

/// Enrolls this phone with an invite.
#[utoipa::path(
    post, path = "/v1/invites/redeem", tag = "phone",
    request_body = RedeemRequest,
    responses(
        (status = 200, body = RedeemResponse),
        (status = 400, body = ErrorBody, description = "invalid_request or bad_signature"),
        (status = 404, body = ErrorBody, description = "invite_not_found"),
        (status = 409, body = ErrorBody, description = "invite_used"),
        (status = 410, body = ErrorBody, description = "invite_expired or invite_revoked"),
        (status = 429, body = ErrorBody, description = "too many failed attempts from this address")
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RedeemRequest>,
) -> ApiResult<Json<RedeemResponse>> {
    let now = state.now();
    state.redeem_throttle.check(ip, now)?;
    let secret = Secret::from_request(&req)?;
    let public_key = unb64(req.phone_public_key.trim())
        .filter(|k| check_public_key_shape(k).is_ok())
        .ok_or_else(|| {
            ApiError::field(
                "phone_public_key",
                "must be a P-256 public key: 65 bytes SEC1 uncompressed, base64url without padding",
            )
        })?;
    let signature = unb64(req.signature.trim()).ok_or_else(|| {
        ApiError::field(
            "signature",
            "must be a DER ECDSA signature, base64url without padding",
        )
    })?;
    verify_phone_signature(
        &public_key,
        &redeem_message(secret.signed_text(), &req.phone_public_key),
        &signature,
    )
    .map_err(|_| ApiError::BadSignature(SignedStep::Redeem))?;
    let device_name = req.device_name.trim().to_owned();
    if device_name.chars().count() > MAX_DEVICE_NAME_CHARS {
        return Err(ApiError::field(
            "device_name",
            format!("is longer than {MAX_DEVICE_NAME_CHARS} characters"),
        ));
    }
    let phone_id = new_id(&state.rng, IdKind::Phone)?;
    let public_key = b64(&public_key);
    let result = state
        .db
        .write(move |tx| {
            let invite = secret.find(tx)?.ok_or(ApiError::InviteNotFound)?;
            if invite.revoked_at.is_some() {
                return Err(ApiError::InviteRevoked);
            }
            if let Some(bound) = &invite.redeemed_phone_id {
                return match phones::get(tx, bound)? {
                    Some(phone) if phone.public_key == public_key && phone.is_active() => Ok((
                        invite.id,
                        response(tx, &phone.id, &phone.operator_id, now)?,
                        false,
                    )),
                    _ => Err(ApiError::InviteUsed),
                };
            }
            if now >= invite.expires_at {
                return Err(ApiError::InviteExpired);
            }
            phones::insert(
                tx,
                &PhoneRow {
                    id: phone_id.clone(),
                    operator_id: invite.operator_id.clone(),
                    public_key,
                    device_name,
                    created_at: now,
                    revoked_at: None,
                },
            )?;
            invites::mark_redeemed(tx, &invite.id, &phone_id, now)?;
            Ok((
                invite.id,
                response(tx, &phone_id, &invite.operator_id, now)?,
                true,
            ))
        })
        .await;
    match result {
        Ok((invite_id, response, fresh)) => {
            tracing::info!(%invite_id, phone_id = %response.phone_id, operator_id = %response.operator.id, retry = !fresh, "invite redeemed");
            Ok(Json(response))
        }
        Err(ApiError::InviteNotFound) => {
            state.redeem_throttle.record_failure(ip, now);
            tracing::info!(client = ?ip, "redeem with an unknown invite");
            Err(ApiError::InviteNotFound)
        }
        Err(e) => Err(e),
    }
}
