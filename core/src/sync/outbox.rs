//! Uploading the outbox of usage events (`POST /v1/events`), after a sync applied.
//!
//! Events go oldest first in batches of at most 500; each acknowledged batch is marked in
//! one transaction. A crash or a lost answer between the upload and the mark only means
//! the batch is sent again, and the backend counts the repeats as duplicates (it keys
//! events by their id): each event is stored once. A failed upload never fails the sync
//! that ran before it; the events wait for the next one.

use super::http::{Http, OffsetSample, endpoint};
use crate::OpKey;
use crate::cancel::CancelToken;
use crate::error::Error;
use opkey_protocol::api::{ErrorCode, USAGE_EVENTS_MAX, UsageEventsReceipt, UsageEventsUpload};
use url::Url;

/// What one upload did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Uploaded {
    pub uploaded: u32,
    pub pending: u32,
}

/// Uploads `operator_id`'s pending events until none is left, one fails, or `cancel`
/// fires.
pub(crate) async fn upload(
    op: &OpKey,
    http: &Http,
    server: &Url,
    phone_id: &str,
    operator_id: &str,
    cancel: &CancelToken,
) -> Uploaded {
    let mut uploaded = 0u32;
    if let Err(e) = upload_all(op, http, server, phone_id, operator_id, cancel, &mut uploaded).await {
        tracing::warn!(phone_id, uploaded, error = %e, "usage events not uploaded; the next sync retries");
    }
    let pending = op.store().pending_event_count(operator_id).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not count the pending usage events");
        0
    });
    if uploaded > 0 || pending > 0 {
        tracing::info!(phone_id, uploaded, pending, "usage events");
    }
    Uploaded { uploaded, pending }
}

async fn upload_all(
    op: &OpKey,
    http: &Http,
    server: &Url,
    phone_id: &str,
    operator_id: &str,
    cancel: &CancelToken,
    uploaded: &mut u32,
) -> Result<(), Error> {
    let url = endpoint(server, "v1/events");
    let mut renewed_session = false;
    loop {
        let events = op.store().pending_events(operator_id, USAGE_EVENTS_MAX)?;
        if events.is_empty() {
            return Ok(());
        }
        let mut best: Option<OffsetSample> = None;
        let token = cancel
            .unless_cancelled(op.access_token(http, server, phone_id, &mut best))
            .await?;
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let full = events.len() == USAGE_EVENTS_MAX;
        let body = UsageEventsUpload { events };
        let answer = cancel
            .unless_cancelled(http.post::<_, UsageEventsReceipt>(url.clone(), &body, Some(&token)))
            .await;
        let receipt = match answer {
            Ok(answer) => answer.body,
            Err(Error::Server {
                code: Some(ErrorCode::SessionExpired),
                ..
            }) if !renewed_session => {
                renewed_session = true;
                op.forget_session().await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if receipt.accepted as usize + receipt.duplicates as usize != ids.len() {
            tracing::warn!(
                sent = ids.len(),
                accepted = receipt.accepted,
                duplicates = receipt.duplicates,
                "the usage-event receipt does not add up"
            );
        }
        op.store().mark_uploaded(&ids, op.now().unix_timestamp())?;
        *uploaded += ids.len() as u32;
        if !full {
            return Ok(());
        }
    }
}
