//! Delta sync by cursor. The cursor is a value of the global change sequence: a phone
//! gets its operator's personal keys (in all organizations) changed after it, oldest
//! first, tombstones as deleted ids, the machines those keys open, its Digital Key
//! grants and the revocation lists of the machines its Digital Keys open.
//!
//! Each page is one write transaction: it first brings the phone's grants up to date
//! (`digital_key::grants`), then reads. Indexes keep it fast (`keys(operator_id, seq)`,
//! `machines(seq)`, `key_machines(machine_id)`, `grants(phone_id, seq)`,
//! `grants(phone_id, renew_after)`, `revocation_lists(seq)`).
//!
//! Paging: a page that has more after it covers the changes up to its last key's seq:
//! grants and lists with a seq in that range come with it (and lists of the machines its
//! keys open, like machines, may come early). The last page brings everything newer,
//! including the grants issued by this request, and its cursor is the highest seq it
//! returned.

use crate::app::AppState;
use crate::auth::PhoneSession;
use crate::db::keys::{self, KeyChange};
use crate::db::{grants, machines, operators, organizations, phones, revocations, sequence};
use crate::digital_key;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use opkey_protocol::AccessType;
use opkey_protocol::api::{
    ErrorBody, OperatorProfile, PinSecretRecord, SYNC_PAGE_DEFAULT, SYNC_PAGE_MAX, SyncResponse,
};
use opkey_protocol::encoding::b64;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The cursor of the previous sync; 0 (the default) for everything.
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    pub cursor: Option<u64>,
    /// Page size, 1 to 5000 (default 2000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<u32>,
}

/// What changed for this phone's operator since the cursor.
#[utoipa::path(
    get, path = "/v1/sync", tag = "phone", security(("phone_session" = [])),
    params(SyncQuery),
    responses(
        (status = 200, body = SyncResponse),
        (status = 400, body = ErrorBody, description = "bad_cursor or invalid limit"),
        (status = 401, body = ErrorBody, description = "session_expired"),
        (status = 403, body = ErrorBody, description = "phone_revoked")
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    session: PhoneSession,
    ApiQuery(query): ApiQuery<SyncQuery>,
) -> ApiResult<Json<SyncResponse>> {
    let limit = query.limit.unwrap_or(SYNC_PAGE_DEFAULT);
    if limit == 0 {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {SYNC_PAGE_MAX}"),
        ));
    }
    let limit = limit.min(SYNC_PAGE_MAX);
    let cursor = query.cursor.unwrap_or(0);
    let now = state.now();
    let phone_id = session.phone_id.clone();
    let (issuer, lifetime) = (state.issuer.clone(), state.grant_lifetime);
    let secrets = state.secrets.clone();
    let (response, issued) = state
        .db
        .write(move |tx| {
            let latest = sequence::current(tx)?;
            let after = i64::try_from(cursor)
                .ok()
                .filter(|c| *c <= latest)
                .ok_or(ApiError::BadCursor {
                    cursor,
                    latest: latest as u64,
                })?;
            let operator_id = &session.operator_id;
            let operator = operators::get_live(tx, operator_id)?.ok_or(ApiError::PhoneRevoked)?;
            let phone = phones::get(tx, &session.phone_id)?
                .filter(|p| p.is_active())
                .ok_or(ApiError::PhoneRevoked)?;
            let issued = digital_key::grants::refresh(tx, &issuer, &phone, now, lifetime)?;

            let mut changes = keys::changes_for_operator(tx, operator_id, after, limit + 1)?;
            let has_more = changes.len() > limit as usize;
            changes.truncate(limit as usize);
            let last_key_seq = changes.last().map_or(after, |(seq, _)| *seq);
            // A page with more after it covers up to its last key; the last page, all.
            let upto = if has_more { last_key_seq } else { i64::MAX };
            let machines = machines::for_operator_sync(tx, operator_id, after, last_key_seq, after)?;
            let grants = grants::for_phone_sync(tx, &phone.id, after, upto)?;
            let lists = revocations::for_operator_sync(tx, operator_id, after, last_key_seq, upto)?;
            // Without more pages, every change up to the newest item returned is seen too.
            let next = if has_more {
                last_key_seq
            } else {
                machines
                    .iter()
                    .map(|(_, seq)| *seq)
                    .chain(grants.iter().map(|(_, seq)| *seq))
                    .chain(lists.iter().map(|(_, seq)| *seq))
                    .fold(last_key_seq, i64::max)
            };
            let mut keys = Vec::with_capacity(changes.len());
            let mut deleted_key_ids = Vec::new();
            for (_, change) in changes {
                match change {
                    KeyChange::Upserted(key) => keys.push(key),
                    KeyChange::Deleted(id) => deleted_key_ids.push(id),
                }
            }
            // The secrets of upserted PIN keys travel with them (sealed at rest, opened here).
            let mut pin_secrets = Vec::new();
            for key in &keys {
                if !matches!(key.access_type, AccessType::RollingPin | AccessType::StaticPin) {
                    continue;
                }
                let sealed = keys::sealed_pins(tx, &key.id)?;
                let seed = match (key.access_type, sealed.seed) {
                    (AccessType::RollingPin, Some(s)) => Some(b64(&secrets.open(&key.id, &s)?)),
                    _ => None,
                };
                let static_pin = match (key.access_type, sealed.static_pin, key.is_personal()) {
                    (AccessType::StaticPin, Some(s), true) => {
                        Some(String::from_utf8_lossy(&secrets.open(&key.id, &s)?).into_owned())
                    }
                    _ => None,
                };
                if seed.is_some() || static_pin.is_some() {
                    pin_secrets.push(PinSecretRecord {
                        key_id: key.id.clone(),
                        version: key.version,
                        seed,
                        static_pin,
                    });
                }
            }
            let response = SyncResponse {
                cursor: next as u64,
                has_more,
                server_time: now,
                operator: OperatorProfile {
                    id: operator.id,
                    name: operator.name,
                    phone: operator.phone,
                },
                organizations: organizations::of_operator(tx, operator_id)?,
                keys,
                deleted_key_ids,
                machines: machines.into_iter().map(|(m, _)| m).collect(),
                grants: grants.into_iter().map(|(g, _)| g).collect(),
                revocations: lists.into_iter().map(|(l, _)| l).collect(),
                issuer_public_key: Some(issuer.public_key().to_owned()),
                pin_secrets,
            };
            Ok((response, issued))
        })
        .await?;
    tracing::debug!(
        %phone_id,
        cursor = response.cursor,
        keys = response.keys.len(),
        deleted = response.deleted_key_ids.len(),
        grants = response.grants.len(),
        issued_grants = issued.grants,
        revocation_lists = response.revocations.len(),
        pin_secrets = response.pin_secrets.len(),
        "sync"
    );
    Ok(Json(response))
}
