//! Issuing grants to a phone (PROTOCOL.md 2.2), inside its sync transaction.
//!
//! Each live Digital Key of the phone's operator gets one grant per chunk of at most
//! [`MAX_MACHINES_PER_GRANT`] of its machines that have a registered BLE key; all grants
//! of a key share its id and serial (the key's version) and are issued together, so the
//! grants of a key in one sync replace all earlier ones. A grant lasts the configured
//! lifetime (never past the key's end) and is renewed on the first sync after its
//! `renew_after`.
//!
//! A key's grants are re-issued when the key changed after them (a new version), when one
//! of its machines changed (a BLE key registered or replaced), or when they are due for
//! renewal. Only keys that may have changed are looked at: those changed after the phone's
//! watermark, those opening a machine changed after it, and grants due for renewal
//! (indexes `keys(operator_id, seq)`, `machines(seq)`, `grants(phone_id, renew_after)`),
//! so a sync with nothing new signs nothing and reads almost nothing.

use super::Issuer;
use crate::db::grants::{self, Candidate, NewGrant, Stored};
use crate::db::phones::PhoneRow;
use crate::db::sequence;
use crate::error::ApiError;
use opkey_protocol::AccessType;
use opkey_protocol::ble::GrantBody;
use opkey_protocol::ble::revocation::REVOKED_ENTIRELY;
use opkey_protocol::encoding::unb64;
use rusqlite::Transaction;
use time::{Duration, OffsetDateTime};

/// A request must fit 1024 bytes, so a grant names at most 8 machines (PROTOCOL.md 2.2).
pub const MAX_MACHINES_PER_GRANT: usize = 8;
/// A grant is renewed this long before it ends (or halfway through a shorter one), so a
/// phone that syncs now and then never holds an expired grant of a live key.
pub const RENEW_MARGIN: Duration = Duration::days(2);

/// What one issuing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub keys: usize,
    pub grants: usize,
}

/// The grants a key should have now: its window, serial and machine chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan<'a> {
    serial: u32,
    valid_from: OffsetDateTime,
    valid_to: OffsetDateTime,
    renew_after: OffsetDateTime,
    chunks: Vec<&'a [String]>,
}

/// Brings the phone's grants up to date at `now`; takes one change-sequence value for
/// everything it issues.
pub fn refresh(
    tx: &Transaction<'_>,
    issuer: &Issuer,
    phone: &PhoneRow,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<Issued, ApiError> {
    let since = grants::watermark(tx, &phone.id)?;
    let candidates = grants::candidates(tx, &phone.id, &phone.operator_id, since, now)?;
    let mut issued = Issued::default();
    let mut seq = None;
    if !candidates.is_empty() {
        let phone_public_key: [u8; 65] = unb64(&phone.public_key)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| ApiError::Internal(format!("phone {} has a malformed stored key", phone.id)))?;
        for key in &candidates {
            // A phone never checked before (watermark 0) holds no grants yet.
            let stored = if since == 0 {
                Vec::new()
            } else {
                grants::stored_for_key(tx, &phone.id, &key.key_id)?
            };
            let Some(plan) = plan(key, now, lifetime) else {
                if !stored.is_empty() {
                    grants::delete_from_chunk(tx, &phone.id, &key.key_id, 0)?;
                }
                continue;
            };
            if up_to_date(&stored, key, &plan, now) {
                continue;
            }
            let seq = match seq {
                Some(seq) => seq,
                None => *seq.insert(sequence::next(tx)?),
            };
            for (chunk, machine_ids) in plan.chunks.iter().enumerate() {
                let body = GrantBody {
                    key_id: key.key_id.clone(),
                    operator_id: phone.operator_id.clone(),
                    phone_public_key,
                    machine_ids: machine_ids.to_vec(),
                    valid_from: unix(plan.valid_from),
                    valid_to: unix(plan.valid_to),
                    issued_at: unix(now),
                    personal: key.operator_id.is_some(),
                    serial: plan.serial,
                };
                let grant = issuer.sign_grant(body).map_err(|e| {
                    ApiError::Internal(format!("cannot sign a grant of key {}: {e}", key.key_id))
                })?;
                grants::upsert(
                    tx,
                    &NewGrant {
                        phone_id: &phone.id,
                        key_id: &key.key_id,
                        chunk: chunk as u32,
                        serial: plan.serial,
                        machine_ids,
                        valid_from: plan.valid_from,
                        valid_to: plan.valid_to,
                        issued_at: now,
                        renew_after: plan.renew_after,
                        bytes: grant.as_bytes(),
                        seq,
                    },
                )?;
            }
            if stored.len() > plan.chunks.len() {
                grants::delete_from_chunk(tx, &phone.id, &key.key_id, plan.chunks.len() as u32)?;
            }
            issued.keys += 1;
            issued.grants += plan.chunks.len();
        }
    }
    if let Some(seq) = seq {
        grants::raise_horizons(tx, &phone.id, seq)?;
    }
    grants::set_watermark(tx, &phone.id, sequence::current(tx)?)?;
    Ok(issued)
}

/// The grants `key` should have at `now`, or `None` when it should have none: not a
/// Digital Key, deleted, revoked, expired, on no machine with a BLE key, or with a
/// version no serial can carry.
fn plan(key: &Candidate, now: OffsetDateTime, lifetime: Duration) -> Option<Plan<'_>> {
    if key.access_type != AccessType::DigitalKey
        || key.deleted
        || key.revoked
        || key.valid_to <= now
        || key.ble_machine_ids.is_empty()
    {
        return None;
    }
    let serial = u32::try_from(key.version)
        .ok()
        .filter(|s| *s != REVOKED_ENTIRELY)?;
    // Whole seconds, as the grant carries them, never outside the key's window. A key
    // that starts later gets a grant for the first lifetime after its start.
    let valid_from = ceil_second(key.valid_from);
    let start = valid_from.max(now);
    let valid_to = floor_second(key.valid_to.min(start + lifetime));
    if valid_to <= valid_from || valid_to <= now {
        return None;
    }
    let renew_after = if valid_to >= floor_second(key.valid_to) {
        // Ends with the key: a renewal could not reach further.
        valid_to
    } else {
        valid_to - RENEW_MARGIN.min((valid_to - start) / 2)
    };
    Some(Plan {
        serial,
        valid_from,
        valid_to,
        renew_after,
        chunks: key.ble_machine_ids.chunks(MAX_MACHINES_PER_GRANT).collect(),
    })
}

/// True when the stored grants are what the plan asks for, were issued after the key and
/// its machines last changed (a machine's new BLE key, say), and are not due for renewal.
fn up_to_date(stored: &[Stored], key: &Candidate, plan: &Plan<'_>, now: OffsetDateTime) -> bool {
    stored.len() == plan.chunks.len()
        && stored
            .iter()
            .zip(&plan.chunks)
            .enumerate()
            .all(|(i, (s, chunk))| {
                s.chunk as usize == i
                    && s.serial == plan.serial
                    && s.machine_ids == *chunk
                    && s.seq > key.seq.max(key.machines_seq)
                    && s.renew_after > now
            })
}

/// Unix seconds; instants before 1970 count as 0.
pub fn unix(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

fn floor_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn ceil_second(t: OffsetDateTime) -> OffsetDateTime {
    if t.nanosecond() == 0 {
        t
    } else {
        floor_second(t) + Duration::SECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(valid_from: OffsetDateTime, valid_to: OffsetDateTime, machines: usize) -> Candidate {
        Candidate {
            key_id: "key_1".into(),
            access_type: AccessType::DigitalKey,
            operator_id: Some("opr_1".into()),
            version: 3,
            valid_from,
            valid_to,
            revoked: false,
            deleted: false,
            ble_machine_ids: (0..machines).map(|i| format!("mch_{i}")).collect(),
            seq: 1,
            machines_seq: 1,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-01-05 09:00 UTC);

    #[test]
    fn a_long_key_gets_a_week_renewed_two_days_before_its_end() {
        let k = key(
            datetime!(2026-01-01 00:00 UTC),
            datetime!(2026-12-31 00:00 UTC),
            9,
        );
        let plan = plan(&k, NOW, Duration::days(7)).unwrap();
        assert_eq!(plan.serial, 3);
        assert_eq!(plan.valid_from, k.valid_from);
        assert_eq!(plan.valid_to, NOW + Duration::days(7));
        assert_eq!(plan.renew_after, NOW + Duration::days(5));
        assert_eq!(plan.chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [8, 1]);
    }

    #[test]
    fn a_grant_never_outlives_its_key_and_is_not_renewed_past_it() {
        let k = key(
            datetime!(2026-01-01 00:00 UTC),
            datetime!(2026-01-06 12:00:00.5 UTC),
            1,
        );
        let plan = plan(&k, NOW, Duration::days(7)).unwrap();
        assert_eq!(plan.valid_to, datetime!(2026-01-06 12:00 UTC));
        assert_eq!(plan.renew_after, plan.valid_to);
    }

    #[test]
    fn a_short_lifetime_is_renewed_halfway() {
        let k = key(
            datetime!(2026-01-01 00:00 UTC),
            datetime!(2026-12-31 00:00 UTC),
            1,
        );
        let plan = plan(&k, NOW, Duration::hours(2)).unwrap();
        assert_eq!(plan.renew_after, NOW + Duration::hours(1));
    }

    #[test]
    fn a_key_that_starts_later_gets_its_first_week() {
        let start = datetime!(2026-03-01 00:00 UTC);
        let k = key(start, datetime!(2026-12-31 00:00 UTC), 1);
        let plan = plan(&k, NOW, Duration::days(7)).unwrap();
        assert_eq!(
            (plan.valid_from, plan.valid_to),
            (start, start + Duration::days(7))
        );
    }

    #[test]
    fn dead_keys_and_keys_without_ble_machines_get_no_grant() {
        let window = (datetime!(2026-01-01 00:00 UTC), datetime!(2026-12-31 00:00 UTC));
        let mut k = key(window.0, window.1, 0);
        assert!(plan(&k, NOW, Duration::days(7)).is_none());
        k.ble_machine_ids = vec!["mch_1".into()];
        k.revoked = true;
        assert!(plan(&k, NOW, Duration::days(7)).is_none());
        k.revoked = false;
        k.access_type = AccessType::RollingPin;
        assert!(plan(&k, NOW, Duration::days(7)).is_none());
        k.access_type = AccessType::DigitalKey;
        k.version = u64::from(REVOKED_ENTIRELY);
        assert!(plan(&k, NOW, Duration::days(7)).is_none());
        k.version = 1;
        assert!(plan(&k, window.1, Duration::days(7)).is_none());
    }
}
