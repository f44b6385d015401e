//! Folding the pages of one sync into one set of changes, in memory, before anything
//! is written. Later pages win over earlier ones: a key deleted after it was changed is
//! deleted, a key changed after it was deleted is kept. Of two grants for the same key
//! and machines the newer (serial, then issue time) wins; of two revocation lists for a
//! machine the higher sequence.
//!
//! Grants and lists are decoded here, and checked against the issuer key the page
//! carries: a page whose grant does not say what its record says, or is not signed by
//! the issuer, is a bad answer and nothing of the sync is applied.

use crate::error::Error;
use crate::pin::PinSecret;
use opkey_protocol::api::{GrantRecord, OperatorProfile, PinSecretRecord, RevocationRecord, SyncResponse};
use opkey_protocol::ble::{Grant, RevocationList};
use opkey_protocol::encoding::unb64;
use opkey_protocol::{Key, Machine, Organization};
use std::collections::{BTreeMap, BTreeSet};

/// One decoded grant, with the fields the store indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchGrant {
    pub key_id: String,
    /// The grant's machine ids, sorted, one per line: which chunk of the key it is.
    pub chunk: String,
    pub serial: u32,
    pub valid_from: u64,
    pub valid_to: u64,
    pub issued_at: u64,
    pub bytes: Vec<u8>,
}

impl BatchGrant {
    fn newer_than(&self, other: &BatchGrant) -> bool {
        (self.serial, self.issued_at) >= (other.serial, other.issued_at)
    }
}

/// One machine's revocation list, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchRevocations {
    pub machine_id: String,
    pub sequence: u32,
    pub bytes: Vec<u8>,
}

/// The chunk name of a grant's machine set.
pub(crate) fn chunk_of(machine_ids: &[String]) -> String {
    let mut ids: Vec<&str> = machine_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.join("\n")
}

/// Everything one sync will apply, in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct SyncBatch {
    /// Started from cursor 0: the batch is the complete set of the operator's keys.
    pub full: bool,
    /// Keys to create or replace, sorted by id.
    pub keys: Vec<Key>,
    pub deleted_key_ids: Vec<String>,
    pub machines: Vec<Machine>,
    pub operator: OperatorProfile,
    pub organizations: Vec<Organization>,
    pub cursor: u64,
    /// The newest grant of each (key, chunk), sorted.
    pub grants: Vec<BatchGrant>,
    /// The newest list of each machine, sorted by machine.
    pub revocations: Vec<BatchRevocations>,
    /// The issuer's public key, if the backend sent it.
    pub issuer_public_key: Option<Vec<u8>>,
    /// The newest PIN secret of each key, sorted by key id.
    pub pin_secrets: Vec<BatchPinSecret>,
}

/// One key's PIN secret, decoded and checked. `Debug` hides the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchPinSecret {
    pub key_id: String,
    pub version: u64,
    pub secret: PinSecret,
}

/// Collects pages as they arrive.
#[derive(Debug, Default)]
pub(crate) struct PageFolder {
    keys: BTreeMap<String, Key>,
    deleted: BTreeSet<String>,
    machines: BTreeMap<String, Machine>,
    last: Option<(OperatorProfile, Vec<Organization>, u64)>,
    grants: BTreeMap<(String, String), BatchGrant>,
    revocations: BTreeMap<String, BatchRevocations>,
    issuer_public_key: Option<Vec<u8>>,
    pin_secrets: BTreeMap<String, BatchPinSecret>,
    pub pages: u32,
    pub keys_received: u32,
}

impl PageFolder {
    /// Folds one page in; refuses a page whose grants or lists do not hold up.
    pub(crate) fn add(&mut self, page: SyncResponse) -> Result<(), Error> {
        let issuer = match &page.issuer_public_key {
            Some(text) => Some(unb64(text).ok_or_else(|| bad("the issuer public key is not base64url"))?),
            None => None,
        };
        for record in &page.grants {
            let grant = decode_grant(record)?;
            let slot = (grant.key_id.clone(), grant.chunk.clone());
            match self.grants.get(&slot) {
                Some(held) if !grant.newer_than(held) => {}
                _ => {
                    self.grants.insert(slot, grant);
                }
            }
        }
        for record in &page.revocations {
            let list = decode_revocations(record, issuer.as_deref())?;
            match self.revocations.get(&list.machine_id) {
                Some(held) if held.sequence >= list.sequence => {}
                _ => {
                    self.revocations.insert(list.machine_id.clone(), list);
                }
            }
        }
        if issuer.is_some() {
            self.issuer_public_key = issuer;
        }
        for record in &page.pin_secrets {
            let secret = decode_pin_secret(record)?;
            self.pin_secrets.insert(secret.key_id.clone(), secret);
        }
        self.pages += 1;
        self.keys_received += page.keys.len() as u32;
        for key in page.keys {
            self.deleted.remove(&key.id);
            self.keys.insert(key.id.clone(), key);
        }
        for id in page.deleted_key_ids {
            self.keys.remove(&id);
            self.pin_secrets.remove(&id);
            self.deleted.insert(id);
        }
        for m in page.machines {
            self.machines.insert(m.id.clone(), m);
        }
        self.last = Some((page.operator, page.organizations, page.cursor));
        Ok(())
    }

    /// `None` before the first page.
    pub(crate) fn finish(self, full: bool) -> Option<SyncBatch> {
        let (operator, organizations, cursor) = self.last?;
        Some(SyncBatch {
            full,
            keys: self.keys.into_values().collect(),
            deleted_key_ids: self.deleted.into_iter().collect(),
            machines: self.machines.into_values().collect(),
            operator,
            organizations,
            cursor,
            grants: self.grants.into_values().collect(),
            revocations: self.revocations.into_values().collect(),
            issuer_public_key: self.issuer_public_key,
            pin_secrets: self.pin_secrets.into_values().collect(),
        })
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadResponse {
        reason: reason.into(),
    }
}

/// Checks a grant's shape against its record. Its issuer signature is checked when the
/// phone is about to present it (`unlock::prepare`), not here: the machine is the verifier
/// that counts, and checking every grant of a 10 000-key first sync would cost ~0.6 s.
fn decode_grant(record: &GrantRecord) -> Result<BatchGrant, Error> {
    let what = || format!("the grant of key {}", record.key_id);
    let bytes = unb64(&record.grant).ok_or_else(|| bad(format!("{} is not base64url", what())))?;
    let grant = Grant::decode(&bytes).map_err(|e| bad(format!("{} is malformed: {e}", what())))?;
    let body = grant.body();
    let mut named = record.machine_ids.clone();
    named.sort_unstable();
    let mut inside = body.machine_ids.clone();
    inside.sort_unstable();
    if body.key_id != record.key_id || body.serial != record.serial || named != inside {
        return Err(bad(format!("{} does not say what its record says", what())));
    }
    Ok(BatchGrant {
        key_id: body.key_id.clone(),
        chunk: chunk_of(&body.machine_ids),
        serial: body.serial,
        valid_from: body.valid_from,
        valid_to: body.valid_to,
        issued_at: body.issued_at,
        bytes,
    })
}

/// Exactly one of seed and static PIN; the seed base64url, the static PIN 4–8 digits.
/// The error names the key, never the secret.
fn decode_pin_secret(record: &PinSecretRecord) -> Result<BatchPinSecret, Error> {
    let what = || format!("the PIN secret of key {}", record.key_id);
    let secret = match (&record.seed, &record.static_pin) {
        (Some(seed), None) => PinSecret::Seed(
            opkey_protocol::pin::PinSeed::from_b64(seed)
                .ok_or_else(|| bad(format!("{}: the seed is not base64url", what())))?,
        ),
        (None, Some(pin)) => {
            opkey_protocol::pin::validate_static_pin(pin)
                .map_err(|_| bad(format!("{}: the static PIN is not 4–8 digits", what())))?;
            PinSecret::Static(zeroize::Zeroizing::new(pin.clone()))
        }
        _ => {
            return Err(bad(format!(
                "{} must hold exactly one of a seed and a static PIN",
                what()
            )));
        }
    };
    Ok(BatchPinSecret {
        key_id: record.key_id.clone(),
        version: record.version,
        secret,
    })
}

fn decode_revocations(record: &RevocationRecord, issuer: Option<&[u8]>) -> Result<BatchRevocations, Error> {
    let what = || format!("the revocation list of machine {}", record.machine_id);
    let bytes = unb64(&record.list).ok_or_else(|| bad(format!("{} is not base64url", what())))?;
    let list = RevocationList::decode(&bytes).map_err(|e| bad(format!("{} is malformed: {e}", what())))?;
    if list.machine_id() != record.machine_id || list.sequence() != record.sequence {
        return Err(bad(format!("{} does not say what its record says", what())));
    }
    if let Some(issuer) = issuer {
        list.verify(issuer)
            .map_err(|_| bad(format!("{} is not signed by the issuer", what())))?;
    }
    Ok(BatchRevocations {
        machine_id: record.machine_id.clone(),
        sequence: record.sequence,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkey_protocol::AccessType;
    use opkey_protocol::ble::test_support::{Issuer, PhoneKey, grant_body};
    use opkey_protocol::encoding::b64;
    use opkey_protocol::model::Validity;
    use time::macros::datetime;

    fn key(id: &str, version: u64) -> Key {
        Key {
            id: id.into(),
            organization_id: "org".into(),
            access_type: AccessType::DigitalKey,
            operator_id: Some("op".into()),
            machine_ids: vec!["m1".into()],
            validity: Validity {
                valid_from: datetime!(2026-01-01 00:00 UTC),
                valid_to: datetime!(2027-01-01 00:00 UTC),
            },
            description: String::new(),
            version,
            revoked: false,
            card_id: None,
            rolling_pin: None,
        }
    }

    fn page(cursor: u64, keys: Vec<Key>, deleted: &[&str]) -> SyncResponse {
        SyncResponse {
            cursor,
            has_more: true,
            server_time: datetime!(2026-06-01 00:00 UTC),
            operator: OperatorProfile {
                id: "op".into(),
                name: "Ann".into(),
                phone: "+4512345678".parse().unwrap(),
            },
            organizations: vec![],
            keys,
            deleted_key_ids: deleted.iter().map(|s| s.to_string()).collect(),
            machines: vec![],
            grants: vec![],
            revocations: vec![],
            issuer_public_key: None,
            pin_secrets: Vec::new(),
        }
    }

    #[test]
    fn later_pages_win_over_earlier_ones() {
        let mut f = PageFolder::default();
        f.add(page(1, vec![key("a", 1), key("b", 1)], &[])).unwrap();
        f.add(page(2, vec![key("a", 2)], &["b", "c"])).unwrap();
        f.add(page(3, vec![key("c", 5)], &[])).unwrap();
        let batch = f.finish(false).unwrap();
        let ids: Vec<(&str, u64)> = batch.keys.iter().map(|k| (k.id.as_str(), k.version)).collect();
        assert_eq!(ids, [("a", 2), ("c", 5)]);
        assert_eq!(batch.deleted_key_ids, ["b"]);
        assert_eq!(batch.cursor, 3);
    }

    fn record(issuer: &Issuer, phone: &PhoneKey, serial: u32, issued_at: u64) -> GrantRecord {
        let mut body = grant_body("k1", phone, &["m2", "m1"], 100, 200);
        body.serial = serial;
        body.issued_at = issued_at;
        let grant = issuer.grant(body);
        GrantRecord {
            key_id: "k1".into(),
            serial,
            machine_ids: vec!["m1".into(), "m2".into()],
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_to: datetime!(2026-01-02 00:00 UTC),
            grant: b64(grant.as_bytes()),
        }
    }

    #[test]
    fn the_newest_grant_of_a_key_and_its_machines_wins_whatever_the_page_order() {
        let (issuer, phone) = (Issuer::new(), PhoneKey::new());
        let mut f = PageFolder::default();
        let mut p1 = page(1, vec![], &[]);
        p1.issuer_public_key = Some(b64(issuer.public_key()));
        p1.grants = vec![record(&issuer, &phone, 2, 150)];
        let mut p2 = p1.clone();
        p2.grants = vec![record(&issuer, &phone, 2, 120), record(&issuer, &phone, 1, 300)];
        f.add(p1).unwrap();
        f.add(p2).unwrap();
        let batch = f.finish(false).unwrap();
        assert_eq!(batch.grants.len(), 1);
        let g = &batch.grants[0];
        assert_eq!((g.serial, g.issued_at, g.chunk.as_str()), (2, 150, "m1\nm2"));
        assert_eq!(batch.issuer_public_key.as_deref(), Some(issuer.public_key()));
    }

    #[test]
    fn a_grant_or_list_that_is_not_what_its_record_says_fails_the_page() {
        let (issuer, phone) = (Issuer::new(), PhoneKey::new());
        let mut p = page(1, vec![], &[]);
        p.issuer_public_key = Some(b64(issuer.public_key()));
        let mut lying = record(&issuer, &phone, 2, 150);
        lying.serial = 3;
        p.grants = vec![lying];
        assert!(matches!(
            PageFolder::default().add(p.clone()),
            Err(Error::BadResponse { .. })
        ));
        // A grant's issuer signature is checked at use (`unlock::prepare` tests: a grant
        // signed by someone else is no grant), not on every sync.
        p.grants = vec![record(&Issuer::new(), &phone, 2, 150)];
        assert!(PageFolder::default().add(p.clone()).is_ok());
        p.grants = vec![];
        p.revocations = vec![RevocationRecord {
            machine_id: "m9".into(),
            sequence: 1,
            list: b64(issuer.revocations("m1", 1, 100, vec![]).as_bytes()),
        }];
        assert!(matches!(
            PageFolder::default().add(p),
            Err(Error::BadResponse { .. })
        ));
    }

    #[test]
    fn no_page_means_nothing_to_apply() {
        assert!(PageFolder::default().finish(true).is_none());
    }
}
