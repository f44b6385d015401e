//! Operator API sessions: the phone proves it holds its enrolled key by signing a fresh
//! server challenge and gets a short-lived access token. The token is kept in memory
//! only (zeroized on drop), never stored, never logged.

use super::http::{Http, OffsetSample, endpoint};
use crate::error::Error;
use crate::signer::Signer;
use opkey_protocol::api::{ChallengeRequest, ChallengeResponse, ErrorCode, SessionRequest, SessionResponse};
use opkey_protocol::auth;
use opkey_protocol::encoding::b64;
use std::fmt;
use time::{Duration, OffsetDateTime};
use url::Url;
use zeroize::Zeroizing;

/// A token is not reused in its last 30 s: a request must not race its expiry.
const EXPIRY_MARGIN: Duration = Duration::seconds(30);

pub(crate) struct Session {
    server: Url,
    phone_id: String,
    token: Zeroizing<String>,
    /// In server time.
    expires_at: OffsetDateTime,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phone_id", &self.phone_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Usable for `phone_id` on `server` at server time `now`.
    pub(crate) fn is_fresh(&self, server: &Url, phone_id: &str, now: OffsetDateTime) -> bool {
        self.server == *server && self.phone_id == phone_id && now + EXPIRY_MARGIN < self.expires_at
    }

    pub(crate) fn token(&self) -> Zeroizing<String> {
        self.token.clone()
    }
}

/// Challenge, sign, session. Returns the session and the best offset sample seen.
///
/// A challenge is good for one session request. When the answer to that request is lost
/// (a reset or a cut-off body after the server used the challenge), the HTTP retry sends
/// the same challenge again and the server answers `challenge_expired`: then a fresh
/// challenge is fetched and signed, up to [`FRESH_CHALLENGES`] times. If every answer was
/// lost, that is the network's doing: a transient [`Error::Network`], not a refusal.
pub(crate) async fn open(
    http: &Http,
    server: &Url,
    phone_id: &str,
    signer: &dyn Signer,
) -> Result<(Session, OffsetSample), Error> {
    let mut fresh = 0;
    loop {
        match open_once(http, server, phone_id, signer).await {
            Err(Error::Server {
                code: Some(ErrorCode::ChallengeExpired),
                ..
            }) if fresh < FRESH_CHALLENGES => {
                fresh += 1;
                tracing::info!(
                    phone_id,
                    fresh,
                    "session challenge already used; asking for a new one"
                );
            }
            Err(Error::Server {
                code: Some(ErrorCode::ChallengeExpired),
                ..
            }) => {
                return Err(Error::Network {
                    reason: "the answers to the session requests were lost on the way".into(),
                });
            }
            other => return other,
        }
    }
}

/// Fresh challenges tried after the first one was spent by a request whose answer was lost.
const FRESH_CHALLENGES: u32 = 3;

async fn open_once(
    http: &Http,
    server: &Url,
    phone_id: &str,
    signer: &dyn Signer,
) -> Result<(Session, OffsetSample), Error> {
    let challenge = http
        .post::<_, ChallengeResponse>(
            endpoint(server, "v1/session/challenge"),
            &ChallengeRequest {
                phone_id: phone_id.to_owned(),
            },
            None,
        )
        .await?;
    let first = challenge.offset(challenge.body.server_time);
    let signature = signer.sign(&auth::session_message(phone_id, &challenge.body.challenge))?;
    let request = SessionRequest {
        phone_id: phone_id.to_owned(),
        challenge: challenge.body.challenge,
        signature: b64(&signature),
    };
    let answer = http
        .post::<_, SessionResponse>(endpoint(server, "v1/session"), &request, None)
        .await?;
    let sample = OffsetSample::best(Some(first), answer.offset(answer.body.server_time));
    tracing::debug!(phone_id, expires_at = %answer.body.expires_at, "session opened");
    let session = Session {
        server: server.clone(),
        phone_id: phone_id.to_owned(),
        token: Zeroizing::new(answer.body.access_token),
        expires_at: answer.body.expires_at,
    };
    Ok((session, sample))
}
