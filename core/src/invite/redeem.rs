//! Redeeming an invite: sign the proof of possession with the phone key, post it, and
//! record the enrollment.
//!
//! Safe to retry: the server answers the same phone key with the same enrollment, and
//! the secret stays sealed in the store until the server has answered for good, so an
//! app killed mid-redeem can finish with [`crate::OpKey::resume_redeem`].
//!
//! A cancel ([`CancelToken`]) lands only while waiting for the server; it forgets the
//! pending invite, so the phone is as it was and the same invite can be redeemed again
//! (the server answers the same phone key with the same enrollment).

use super::{InviteSecret, parse};
use crate::OpKey;
use crate::cancel::CancelToken;
use crate::error::Error;
use crate::events::ChangeEvent;
use crate::signer::SignerError;
use crate::sync::http::endpoint;
use crate::views::Enrollment;
use opkey_protocol::api::{ErrorCode, RedeemRequest, RedeemResponse};
use opkey_protocol::auth;
use opkey_protocol::encoding::b64;
use url::Url;

pub(crate) async fn redeem(op: &OpKey, input: &str, cancel: &CancelToken) -> Result<Enrollment, Error> {
    let (parsed, secret) = parse::parse(&op.config, input)?;
    let _one_at_a_time = cancel
        .unless_cancelled(async { Ok(op.network.lock().await) })
        .await?;
    let remembered = op.store().phone()?.server_url;
    let server = op
        .config
        .server_url
        .clone()
        .or(parsed.server_url)
        .or(remembered)
        .ok_or(Error::ServerUnknown)?;
    op.store().begin_redeem(&secret.to_bytes(), &server)?;
    send(op, &secret, &server, cancel).await
}

pub(crate) async fn resume(op: &OpKey) -> Result<Enrollment, Error> {
    let _one_at_a_time = op.network.lock().await;
    let (secret, server) = {
        let store = op.store();
        let server = store.phone()?.pending_server_url;
        let sealed = store.load_secret(crate::store::SLOT_INVITE)?;
        match (sealed, server) {
            (Some(bytes), Some(server)) => (InviteSecret::from_bytes(&bytes), server),
            _ => return Err(Error::NotEnrolled),
        }
    };
    let secret = secret.ok_or(Error::NotEnrolled)?;
    send(op, &secret, &server, &CancelToken::new()).await
}

async fn send(
    op: &OpKey,
    secret: &InviteSecret,
    server: &Url,
    cancel: &CancelToken,
) -> Result<Enrollment, Error> {
    let public_key = op.signer.public_key()?;
    auth::check_public_key_shape(&public_key).map_err(|_| SignerError::InvalidPublicKey)?;
    let public_key = b64(&public_key);
    let signature = op
        .signer
        .sign(&auth::redeem_message(secret.expose(), &public_key))?;
    let (token, code) = match secret {
        InviteSecret::Token(t) => (Some(t.expose().to_owned()), None),
        InviteSecret::Code(c) => (None, Some(c.expose().to_owned())),
    };
    let request = RedeemRequest {
        token,
        code,
        phone_public_key: public_key,
        signature: b64(&signature),
        device_name: op.config.device_name.clone(),
    };
    let http = op.http()?;
    let answer = cancel
        .unless_cancelled(http.post::<_, RedeemResponse>(
            endpoint(server, "v1/invites/redeem"),
            &request,
            None,
        ))
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            let e = outcome(e);
            if is_final(&e) || e == Error::Cancelled {
                op.store().abandon_redeem()?;
            }
            return Err(e);
        }
    };
    let offset_ms = answer.offset(answer.body.server_time).offset_ms;
    let body = answer.body;
    let enrollment = Enrollment {
        phone_id: body.phone_id,
        operator: body.operator,
        organizations: body.organizations,
        server_url: server.clone(),
    };
    let switched = op.store().save_enrollment(&enrollment, offset_ms)?;
    op.set_offset(offset_ms);
    op.forget_session().await;
    tracing::info!(
        phone_id = enrollment.phone_id,
        operator_id = enrollment.operator.id,
        organizations = enrollment.organizations.len(),
        switched_operator = switched,
        offset_ms,
        "invite redeemed"
    );
    op.emit(ChangeEvent::EnrollmentChanged);
    if switched {
        op.emit(ChangeEvent::KeysChanged);
    }
    Ok(enrollment)
}

/// The server's verdict on an invite, as the app's error.
fn outcome(e: Error) -> Error {
    match e {
        Error::Server { code: Some(code), .. } => match code {
            ErrorCode::InviteNotFound => Error::InviteNotFound,
            ErrorCode::InviteExpired => Error::InviteExpired,
            ErrorCode::InviteUsed => Error::InviteAlreadyUsed,
            ErrorCode::InviteRevoked => Error::InviteRevoked,
            ErrorCode::TooManyRequests => Error::TooManyAttempts,
            _ => e,
        },
        other => other,
    }
}

/// After these the invite will never redeem: forget its secret.
fn is_final(e: &Error) -> bool {
    match e {
        Error::InviteNotFound | Error::InviteExpired | Error::InviteAlreadyUsed | Error::InviteRevoked => {
            true
        }
        Error::Server { status, .. } => (400..500).contains(status) && *status != 429,
        _ => false,
    }
}
