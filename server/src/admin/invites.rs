//! Issuing invites and sending them by SMS. An invite's token and short code exist in
//! clear only in memory between issuing and rendering the SMS; the database keeps their
//! digests, and the short code sealed under the secrets key for the invite's landing page.
//! Logs name invite, SMS and operator ids only.

use crate::app::AppState;
use crate::db::invites::{self, InviteRow};
use crate::db::operators::OperatorRow;
use crate::error::ApiError;
use crate::ids::{IdKind, new_id};
use crate::keypad::SecretsKey;
use crate::sms::{SmsError, invite_text};
use opkey_protocol::Organization;
use opkey_protocol::api::SmsMessage;
use opkey_protocol::encoding::sha256_hex;
use opkey_protocol::invite::{InviteToken, ShortCode};
use ring::rand::SecureRandom;
use rusqlite::Connection;
use time::OffsetDateTime;

/// A freshly issued invite and what its SMS needs. The secrets' `Debug` is redacted.
#[derive(Debug)]
pub struct IssuedInvite {
    pub invite: InviteRow,
    pub operator: OperatorRow,
    pub organization_name: String,
    token: InviteToken,
    code: ShortCode,
}

/// Creates a pending invite for `operator` in `organization`.
pub fn issue(
    conn: &Connection,
    rng: &dyn SecureRandom,
    secrets: &SecretsKey,
    operator: &OperatorRow,
    organization: &Organization,
    ttl: time::Duration,
    now: OffsetDateTime,
) -> Result<IssuedInvite, ApiError> {
    let token = InviteToken::generate(rng)?;
    let code = ShortCode::generate(rng)?;
    let invite = InviteRow {
        id: new_id(rng, IdKind::Invite)?,
        operator_id: operator.id.clone(),
        organization_id: organization.id.clone(),
        created_at: now,
        expires_at: now + ttl,
        redeemed_at: None,
        redeemed_phone_id: None,
        revoked_at: None,
        sms_id: None,
    };
    invites::insert(
        conn,
        &invite,
        &sha256_hex(token.expose().as_bytes()),
        &sha256_hex(code.expose().as_bytes()),
        &secrets.seal_invite_code(rng, &invite.id, code.expose())?,
    )?;
    Ok(IssuedInvite {
        invite,
        operator: operator.clone(),
        organization_name: organization.name.clone(),
        token,
        code,
    })
}

/// Sends the invitation SMS and records its id on the invite. Returns the SMS id.
pub async fn deliver(state: &AppState, issued: &IssuedInvite) -> Result<String, SmsError> {
    let message = SmsMessage {
        id: new_id(&state.rng, IdKind::Sms).map_err(|_| SmsError::Request("no randomness".to_owned()))?,
        recipient: issued.operator.phone.clone(),
        body: invite_text(
            &issued.operator.name,
            &issued.organization_name,
            &state.invite_link(issued.token.expose()),
            &issued.code.display(),
            issued.invite.expires_at,
        ),
        sent_at: state.now(),
    };
    state.sms.send(&message).await?;
    let (invite_id, sms_id) = (issued.invite.id.clone(), message.id.clone());
    state
        .db
        .write(move |tx| Ok(invites::set_sms_id(tx, &invite_id, &sms_id)?))
        .await
        .map_err(|e| SmsError::Outbox(e.to_string()))?;
    tracing::info!(
        invite_id = %issued.invite.id,
        sms_id = %message.id,
        operator_id = %issued.operator.id,
        "invitation sent"
    );
    Ok(message.id)
}

/// The error for an SMS that failed after the operator (and invite) were stored.
pub fn sms_failed(done: &str, operator_id: &str, error: &SmsError) -> ApiError {
    tracing::warn!(operator_id, %error, "invitation SMS failed");
    ApiError::SmsFailed(format!(
        "{done}, but the SMS invitation could not be sent: {error}; re-send it with \
         POST /admin/v1/operators/{operator_id}/invite"
    ))
}
