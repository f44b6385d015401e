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
//! Grants, revocation lists and the issuer key are applied with the keys, in the same
//! transaction. After the commit the outbox of usage events is uploaded ([`outbox`]);
//! its failure does not fail the sync.
//!
//! Only the fetch phase may be cancelled ([`crate::CancelToken`]): it waits on the network
//! and writes nothing; the apply never waits. (A cancel during the upload after the
//! commit stops the upload; the sync still reports success.) Listeners hear `SyncStarted`, then
//! `KeysChanged` if the commit changed keys, then `SyncFinished` or `SyncFailed`.
//!
//! Logs ids, counts and durations; never a token, a key or a signature.

pub(crate) mod batch;
pub(crate) mod http;
pub(crate) mod outbox;
pub(crate) mod session;

use crate::OpKey;
use crate::cancel::CancelToken;
use crate::error::Error;
use crate::events::ChangeEvent;
use crate::views::{SyncProgress, SyncReport};
use batch::PageFolder;
use http::{Http, OffsetSample, endpoint};
use opkey_protocol::api::{ErrorCode, SyncResponse};
use std::time::Instant;
use url::Url;

/// One sync, announced to the listeners: started, then finished or failed.
pub(crate) async fn run(
    op: &OpKey,
    cancel: &CancelToken,
    progress: &(dyn Fn(SyncProgress) + Send + Sync),
) -> Result<SyncReport, Error> {
    let announced = Announced::start(op);
    let result = sync(op, cancel, progress).await;
    announced.end(&result);
    result
}

async fn sync(
    op: &OpKey,
    cancel: &CancelToken,
    progress: &(dyn Fn(SyncProgress) + Send + Sync),
) -> Result<SyncReport, Error> {
    let _one_at_a_time = cancel
        .unless_cancelled(async { Ok(op.network.lock().await) })
        .await?;
    let started = Instant::now();
    let phone = op.store().phone()?;
    let phone_id = phone.phone_id.clone().ok_or(Error::NotEnrolled)?;
    if phone.revoked {
        return Err(Error::PhoneRevoked);
    }
    let server = op.server_url(&phone).ok_or(Error::ServerUnknown)?;
    let http = op.http()?;

    // Only this phase waits on the network, and it writes nothing: the one place a
    // cancel may land.
    let fetched = cancel
        .unless_cancelled(fetch(op, http, &server, &phone_id, phone.cursor, progress))
        .await;
    let Fetched { folder, best, from } = match fetched {
        Ok(fetched) => fetched,
        Err(e) => return Err(revoke_if_withdrawn(op, e).await),
    };

    let pages = folder.pages;
    let batch = folder.finish(from == 0).ok_or_else(|| Error::Internal {
        reason: "a sync ended without a page".into(),
    })?;
    // The last look: from here to the commit nothing waits, so nothing can interrupt.
    cancel.check()?;
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
    // After the commit: a failed upload leaves the events for the next sync, and a
    // cancel here only cuts the upload short.
    let events = outbox::upload(op, http, &server, &phone_id, &batch.operator.id, cancel).await;
    Ok(SyncReport {
        upserted: applied.upserted,
        deleted: applied.deleted,
        pages,
        cursor: batch.cursor,
        server_offset_ms: offset_ms,
        events_uploaded: events.uploaded,
        events_pending: events.pending,
    })
}

/// Every page since the cursor, folded in memory.
struct Fetched {
    folder: PageFolder,
    best: Option<OffsetSample>,
    /// The cursor the pages start from (0 after the server refused ours).
    from: u64,
}

/// Fetches pages until `has_more` is false. Never writes the store: a cancel may drop
/// this future at any await.
async fn fetch(
    op: &OpKey,
    http: &Http,
    server: &Url,
    phone_id: &str,
    cursor: u64,
    progress: &(dyn Fn(SyncProgress) + Send + Sync),
) -> Result<Fetched, Error> {
    let mut best: Option<OffsetSample> = None;
    let mut from = cursor;
    let mut renewed_session = false;
    let mut restarted = false;
    'fetch: loop {
        let mut folder = PageFolder::default();
        let mut cursor = from;
        loop {
            progress(SyncProgress::Fetching {
                page: folder.pages + 1,
                keys_so_far: folder.keys_received,
            });
            let token = op.access_token(http, server, phone_id, &mut best).await?;
            match http
                .get::<SyncResponse>(sync_url(server, cursor), Some(&token))
                .await
            {
                Ok(answer) => {
                    best = Some(OffsetSample::best(best, answer.offset(answer.body.server_time)));
                    let (more, next) = (answer.body.has_more, answer.body.cursor);
                    folder.add(answer.body)?;
                    if !more {
                        return Ok(Fetched { folder, best, from });
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
                Err(e) => return Err(e),
            }
        }
    }
}

/// Tells the listeners that a sync started and how it ended, also when the sync's
/// future is dropped before it ended (which can only happen before the commit).
struct Announced<'a> {
    op: &'a OpKey,
    ended: bool,
}

impl<'a> Announced<'a> {
    fn start(op: &'a OpKey) -> Self {
        op.emit(ChangeEvent::SyncStarted);
        Self { op, ended: false }
    }

    fn end(mut self, result: &Result<SyncReport, Error>) {
        self.ended = true;
        match result {
            Ok(report) => {
                if report.upserted > 0 || report.deleted > 0 {
                    self.op.emit(ChangeEvent::KeysChanged);
                }
                self.op.emit(ChangeEvent::SyncFinished {
                    report: report.clone(),
                });
            }
            Err(e) => self.op.emit(ChangeEvent::SyncFailed {
                reason: e.to_string(),
                cancelled: *e == Error::Cancelled,
            }),
        }
    }
}

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        // Not while unwinding: a listener that panicked then would abort the process.
        if !self.ended && !std::thread::panicking() {
            self.op.emit(ChangeEvent::SyncFailed {
                reason: Error::Cancelled.to_string(),
                cancelled: true,
            });
        }
    }
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
    let answer = match revoked {
        Ok(removed) => {
            tracing::warn!(
                keys_removed = removed,
                "the backend withdrew this phone; keys removed"
            );
            op.emit(ChangeEvent::EnrollmentChanged);
            if removed > 0 {
                op.emit(ChangeEvent::KeysChanged);
            }
            Error::PhoneRevoked
        }
        Err(store) => Error::Store(store),
    };
    op.forget_session().await;
    answer
}
