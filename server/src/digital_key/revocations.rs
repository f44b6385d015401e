//! Revocation lists, one per machine (PROTOCOL.md 2.3), issued inside the transaction of
//! the change that calls for them.
//!
//! Keys on keypads (Rolling PIN, Static PIN and card keys) get entries too, on machines with
//! a keypad, until the latest end date any keypad table carried for them: the keypad
//! refuses a key whose serial is below the list's `min_serial`.
//!
//! When a Digital Key is deleted or revoked its machines must refuse every grant of it
//! (`min_serial = REVOKED_ENTIRELY`); when it is edited (a new version) or superseded, every
//! grant of an older version (`min_serial = the new version`). An entry is needed only
//! while a grant it refuses may still be valid: until the key's grant horizon, the latest
//! end of any grant issued for it. Keys whose grants were never issued, or have all
//! expired, need no entry and cause no new list.
//!
//! **Cap.** A list rides inside an unlock request, so it keeps at most
//! [`MAX_LIST_ENTRIES`] entries (PROTOCOL.md 2.3). When more are needed on one machine,
//! the list keeps those whose refused grants expire last (the newest change first among
//! equals) and leaves out the ones that expire soonest: a machine that learns only the
//! capped list could accept such a left-out grant until it expires, at most one grant
//! lifetime after it was issued. Expired entries are pruned whenever a list is issued.

use super::Issuer;
use super::grants::unix;
use crate::db::{grants, keys, revocations, sequence};
use crate::error::ApiError;
use opkey_protocol::ble::RevocationBody;
use rusqlite::Transaction;
use std::collections::BTreeSet;
use time::OffsetDateTime;

pub use opkey_protocol::ble::revocation::REVOKED_ENTIRELY;

/// The most entries one machine's list carries.
pub const MAX_LIST_ENTRIES: usize = 16;

/// Machines must refuse grants of `key_id` below `min_serial`.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    pub key_id: &'a str,
    /// The machines the key opens.
    pub machine_ids: &'a [String],
    pub min_serial: u32,
}

/// The `min_serial` that refuses every version before `version` (a version no serial can
/// carry refuses them all).
pub fn min_serial_for_version(version: u64) -> u32 {
    u32::try_from(version).unwrap_or(REVOKED_ENTIRELY)
}

/// Supersedes the operator's live Digital Keys whose grants may still be valid: each
/// gets a new version, and their machines refuse the older ones. For a lost or replaced
/// phone: its grants stop opening machines as soon as a machine learns the list, and
/// the new phone gets grants of the new version. Returns how many keys were superseded.
pub fn supersede_operator_grants(
    tx: &Transaction<'_>,
    issuer: &Issuer,
    operator_id: &str,
    now: OffsetDateTime,
) -> Result<usize, ApiError> {
    let superseded = grants::keys_with_live_grants(tx, operator_id, now)?;
    let mut refusals = Vec::with_capacity(superseded.len());
    for (key_id, version, machine_ids) in &superseded {
        let version = version + 1;
        keys::set_version(tx, key_id, version, sequence::next(tx)?)?;
        refusals.push(Refusal {
            key_id,
            machine_ids,
            min_serial: min_serial_for_version(version),
        });
    }
    refuse(tx, issuer, &refusals, now)?;
    Ok(superseded.len())
}

/// Records the refusals and issues one new list for each machine whose entries changed.
/// Returns how many lists were issued.
pub fn refuse(
    tx: &Transaction<'_>,
    issuer: &Issuer,
    refusals: &[Refusal<'_>],
    now: OffsetDateTime,
) -> Result<usize, ApiError> {
    let mut machines = BTreeSet::new();
    for refusal in refusals {
        let grants_until = grants::horizon(tx, refusal.key_id)?.filter(|h| *h > now);
        // Keys on keypads: a keypad table may hold the key until its latest end date.
        let keypad_until = keys::keypad_horizon(tx, refusal.key_id)?.filter(|h| *h > now);
        if grants_until.is_none() && keypad_until.is_none() {
            continue;
        }
        for machine_id in refusal.machine_ids {
            let Some(has_keypad) = revocations::list_target(tx, machine_id)? else {
                continue;
            };
            let Some(needed_until) = grants_until.max(keypad_until.filter(|_| has_keypad)) else {
                continue;
            };
            revocations::upsert_entry(
                tx,
                machine_id,
                refusal.key_id,
                refusal.min_serial,
                needed_until,
                now,
            )?;
            machines.insert(machine_id.as_str());
        }
    }
    for machine_id in &machines {
        issue_list(tx, issuer, machine_id, now)?;
    }
    Ok(machines.len())
}

/// Signs and stores the machine's next list: sequence one above the last.
fn issue_list(
    tx: &Transaction<'_>,
    issuer: &Issuer,
    machine_id: &str,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    revocations::prune(tx, machine_id, now)?;
    let mut entries = revocations::entries(tx, machine_id, MAX_LIST_ENTRIES)?;
    entries.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let previous = revocations::latest(tx, machine_id)?.map_or(0, |(sequence, _)| sequence);
    let sequence = previous.checked_add(1).ok_or_else(|| {
        ApiError::Internal(format!("machine {machine_id} ran out of list sequence numbers"))
    })?;
    let list = issuer
        .sign_revocations(RevocationBody {
            machine_id: machine_id.to_owned(),
            sequence,
            issued_at: unix(now),
            entries,
        })
        .map_err(|e| ApiError::Internal(format!("cannot sign the revocation list of {machine_id}: {e}")))?;
    revocations::store(
        tx,
        machine_id,
        sequence,
        now,
        list.as_bytes(),
        sequence::next(tx)?,
    )?;
    Ok(())
}
