//! Sessions: the phone asks for a fresh single-use challenge, signs it with its
//! enrolled key, and gets a short-lived access token (stored only as a digest) for
//! `GET /v1/sync`.

use crate::app::AppState;
use crate::db::{phones, sessions};
use crate::error::{ApiError, ApiResult, SignedStep};
use crate::extract::ApiJson;
use crate::ids::new_secret;
use axum::Json;
use axum::extract::State;
use opkey_protocol::api::{ChallengeRequest, ChallengeResponse, ErrorBody, SessionRequest, SessionResponse};
use opkey_protocol::auth::{CHALLENGE_BYTES, session_message, verify_phone_signature};
use opkey_protocol::encoding::{b64, sha256_hex, unb64};
use ring::rand::SecureRandom;
use time::Duration;

pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(2);
pub const SESSION_LIFETIME: Duration = Duration::minutes(10);

/// A fresh challenge for this phone.
#[utoipa::path(
    post, path = "/v1/session/challenge", tag = "phone",
    request_body = ChallengeRequest,
    responses(
        (status = 200, body = ChallengeResponse),
        (status = 400, body = ErrorBody, description = "the body is not a JSON object of this shape"),
        (status = 403, body = ErrorBody, description = "phone_revoked"),
        (status = 404, body = ErrorBody, description = "unknown phone id")
    )
)]
pub async fn challenge(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> ApiResult<Json<ChallengeResponse>> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    state.rng.fill(&mut bytes)?;
    let challenge = b64(&bytes);
    let now = state.now();
    let expires_at = now + CHALLENGE_LIFETIME;
    let stored = challenge.clone();
    state
        .db
        .write(move |tx| {
            let phone = phones::get(tx, &req.phone_id)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "phone {} is not enrolled: redeem an invite first",
                    req.phone_id
                ))
            })?;
            if !phone.is_active() {
                return Err(ApiError::PhoneRevoked);
            }
            Ok(sessions::insert_challenge(
                tx, &stored, &phone.id, expires_at, now,
            )?)
        })
        .await?;
    Ok(Json(ChallengeResponse {
        challenge,
        expires_at,
        server_time: now,
    }))
}

/// Opens a session with a signed challenge.
#[utoipa::path(
    post, path = "/v1/session", tag = "phone",
    request_body = SessionRequest,
    responses(
        (status = 200, body = SessionResponse),
        (status = 400, body = ErrorBody, description = "the body is not a JSON object of this shape"),
        (status = 401, body = ErrorBody, description = "challenge_expired or bad_signature"),
        (status = 403, body = ErrorBody, description = "phone_revoked")
    )
)]
pub async fn open(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    let now = state.now();
    let (phone_id, challenge) = (req.phone_id.clone(), req.challenge.clone());
    // The challenge is spent by the first attempt, whether or not its signature holds.
    let phone = state
        .db
        .write(move |tx| {
            let row = sessions::get_challenge(tx, &challenge)?
                .filter(|c| c.phone_id == phone_id && c.used_at.is_none() && now < c.expires_at)
                .ok_or(ApiError::ChallengeExpired)?;
            sessions::mark_challenge_used(tx, &challenge, now)?;
            phones::get(tx, &row.phone_id)?.ok_or(ApiError::ChallengeExpired)
        })
        .await?;
    if !phone.is_active() {
        return Err(ApiError::PhoneRevoked);
    }
    let public_key = unb64(&phone.public_key)
        .ok_or_else(|| ApiError::Internal(format!("phone {} has a malformed stored key", phone.id)))?;
    let signature = unb64(req.signature.trim()).ok_or(ApiError::BadSignature(SignedStep::Session))?;
    verify_phone_signature(
        &public_key,
        &session_message(&req.phone_id, &req.challenge),
        &signature,
    )
    .map_err(|_| ApiError::BadSignature(SignedStep::Session))?;

    let token = new_secret(&state.rng)?;
    let digest = sha256_hex(token.as_bytes());
    let expires_at = now + SESSION_LIFETIME;
    let session_phone = phone.id.clone();
    state
        .db
        .write(move |tx| {
            Ok(sessions::insert_session(
                tx,
                &digest,
                &session_phone,
                expires_at,
                now,
            )?)
        })
        .await?;
    tracing::debug!(phone_id = %phone.id, "session opened");
    Ok(Json(SessionResponse {
        access_token: token,
        expires_at,
        server_time: now,
    }))
}
