//! Folding the pages of one sync into one set of changes, in memory, before anything
//! is written. Later pages win over earlier ones: a key deleted after it was changed is
//! deleted, a key changed after it was deleted is kept.

use opkey_protocol::api::{OperatorProfile, SyncResponse};
use opkey_protocol::{Key, Machine, Organization};
use std::collections::{BTreeMap, BTreeSet};

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
}

/// Collects pages as they arrive.
#[derive(Debug, Default)]
pub(crate) struct PageFolder {
    keys: BTreeMap<String, Key>,
    deleted: BTreeSet<String>,
    machines: BTreeMap<String, Machine>,
    last: Option<(OperatorProfile, Vec<Organization>, u64)>,
    pub pages: u32,
    pub keys_received: u32,
}

impl PageFolder {
    pub(crate) fn add(&mut self, page: SyncResponse) {
        self.pages += 1;
        self.keys_received += page.keys.len() as u32;
        for key in page.keys {
            self.deleted.remove(&key.id);
            self.keys.insert(key.id.clone(), key);
        }
        for id in page.deleted_key_ids {
            self.keys.remove(&id);
            self.deleted.insert(id);
        }
        for m in page.machines {
            self.machines.insert(m.id.clone(), m);
        }
        self.last = Some((page.operator, page.organizations, page.cursor));
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkey_protocol::AccessType;
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
        }
    }

    #[test]
    fn later_pages_win_over_earlier_ones() {
        let mut f = PageFolder::default();
        f.add(page(1, vec![key("a", 1), key("b", 1)], &[]));
        f.add(page(2, vec![key("a", 2)], &["b", "c"]));
        f.add(page(3, vec![key("c", 5)], &[]));
        let batch = f.finish(false).unwrap();
        let ids: Vec<(&str, u64)> = batch.keys.iter().map(|k| (k.id.as_str(), k.version)).collect();
        assert_eq!(ids, [("a", 2), ("c", 5)]);
        assert_eq!(batch.deleted_key_ids, ["b"]);
        assert_eq!(batch.cursor, 3);
    }

    #[test]
    fn no_page_means_nothing_to_apply() {
        assert!(PageFolder::default().finish(true).is_none());
    }
}
