//! Sync: bring the phone's offline copy of the operator's keys up to date.
//!
//! One sync opens (or reuses) a session, fetches `GET /v1/sync?cursor=N` pages until
//! `has_more` is false, folds them in memory, then applies everything in one store
//! transaction. Any failure before that commit — network, timeout, 5xx after retries,
//! a cut-off or invalid body, a full disk — leaves the store exactly as it was.
//!
//! Error codes the backend sends are acted on here: `session_expired` opens a new
//! session once; `bad_cursor` syncs again from zero once; `phone_revoked` removes the
//! keys and marks the phone revoked.
//!
//! Logs ids, counts and durations; never a token, a key or a signature.

pub(crate) mod batch;
pub(crate) mod http;
pub(crate) mod session;

use crate::OpKey;
use crate::error::Error;
use crate::views::{SyncProgress, SyncReport};
use batch::PageFolder;
use http::{OffsetSample, endpoint};
use opkey_protocol::api::{ErrorCode, SyncResponse};
use std::time::Instant;
use url::Url;

pub(crate) async fn run(
    op: &OpKey,
    progress: &(dyn Fn(SyncProgress) + Send + Sync),
) -> Result<SyncReport, Error> {
    let _one_at_a_time = op.network.lock().await;
    let started = Instant::now();
    let phone = op.store().phone()?;
    let phone_id = phone.phone_id.clone().ok_or(Error::NotEnrolled)?;
    if phone.revoked {
        return Err(Error::PhoneRevoked);
    }
    let server = op.server_url(&phone).ok_or(Error::ServerUnknown)?;
    let http = op.http()?;

    let mut best: Option<OffsetSample> = None;
    let mut from = phone.cursor;
    let mut renewed_session = false;
    let mut restarted = false;
    let folder = 'fetch: loop {
        let mut folder = PageFolder::default();
        let mut cursor = from;
        loop {
            progress(SyncProgress::Fetching {
                page: folder.pages + 1,
                keys_so_far: folder.keys_received,
            });
            let token = match op.access_token(http, &server, &phone_id, &mut best).await {
                Ok(token) => token,
                Err(e) => return Err(revoke_if_withdrawn(op, e).await),
            };
            match http
                .get::<SyncResponse>(sync_url(&server, cursor), Some(&token))
                .await
            {
                Ok(answer) => {
                    best = Some(OffsetSample::best(best, answer.offset(answer.body.server_time)));
                    let (more, next) = (answer.body.has_more, answer.body.cursor);
                    folder.add(answer.body);
                    if !more {
                        break;
                    }
                    if next <= cursor {
                        return Err(Error::BadResponse {
                            reason: format!("the sync cursor did not advance past {cursor}"),
                        });
                    }
                    cursor = next;
                }
                Err(Error::Server {
                    code: Some(ErrorCode::SessionExpired),
                    ..
                }) if !renewed_session => {
                    tracing::info!(phone_id, "session expired; opening a new one");
                    renewed_session = true;
                    op.forget_session().await;
                }
                Err(Error::Server {
                    code: Some(ErrorCode::BadCursor),
                    ..
                }) if !restarted => {
                    tracing::warn!(phone_id, cursor, "server refused the cursor; syncing from zero");
                    restarted = true;
                    from = 0;
                    continue 'fetch;
                }
                Err(e) => return Err(revoke_if_withdrawn(op, e).await),
            }
        }
        break folder;
    };

    let pages = folder.pages;
    let batch = folder.finish(from == 0).ok_or_else(|| Error::Internal {
        reason: "a sync ended without a page".into(),
    })?;
    progress(SyncProgress::Applying {
        keys: batch.keys.len() as u32,
    });
    let offset_ms = best.map(|s| s.offset_ms).or(phone.server_offset_ms).unwrap_or(0);
    let synced_at = op.clock.now() + time::Duration::milliseconds(offset_ms);
    let applied = op.store().apply_sync(&batch, offset_ms, synced_at)?;
    op.set_offset(offset_ms);
    tracing::info!(
        phone_id,
        upserted = applied.upserted,
        deleted = applied.deleted,
        pages,
        cursor = batch.cursor,
        offset_ms,
        ms = started.elapsed().as_millis() as u64,
        "sync applied"
    );
    Ok(SyncReport {
        upserted: applied.upserted,
        deleted: applied.deleted,
        pages,
        cursor: batch.cursor,
        server_offset_ms: offset_ms,
    })
}

fn sync_url(server: &Url, cursor: u64) -> Url {
    let mut url = endpoint(server, "v1/sync");
    url.query_pairs_mut().append_pair("cursor", &cursor.to_string());
    url
}

/// `phone_revoked` from any call: remove the keys, mark the phone, and say so.
pub(crate) async fn revoke_if_withdrawn(op: &OpKey, e: Error) -> Error {
    if !matches!(
        e,
        Error::Server {
            code: Some(ErrorCode::PhoneRevoked),
            ..
        }
    ) {
        return e;
    }
    let revoked = op.store().revoke();
    op.forget_session().await;
    match revoked {
        Ok(removed) => {
            tracing::warn!(
                keys_removed = removed,
                "the backend withdrew this phone; keys removed"
            );
            Error::PhoneRevoked
        }
        Err(store) => Error::Store(store),
    }
}
