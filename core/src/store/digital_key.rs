//! The Digital Key's rows: grants, revocation lists, the issuer key, and what each machine
//! is known to have cached. Sync writes them in the same transaction as the keys; the
//! unlock driver reads what it needs for one machine in one go.
//!
//! Grants and lists are kept as the bytes the backend signed: not secret, but the machine
//! checks their signatures, so they are never rebuilt or edited here.

use super::StoreError;
use super::db::{Store, from_parts, stored_enum};
use crate::sync::batch::SyncBatch;
use opkey_protocol::AccessType;
use opkey_protocol::model::Validity;
use rusqlite::{OptionalExtension, Transaction, params};

/// A key that names the machine, as the unlock checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessKey {
    pub id: String,
    pub access_type: AccessType,
    pub validity: Validity,
    pub revoked: bool,
}

/// A grant of one of those keys (it may name other machines; the caller decodes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredGrant {
    pub key_id: String,
    pub serial: u32,
    pub issued_at: u64,
    pub bytes: Vec<u8>,
}

/// The grant a machine answered last with this key: it holds it in its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedGrant {
    pub serial: u32,
    pub issued_at: u64,
}

/// Everything the phone holds for opening one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MachineAccess {
    /// The machine's BLE public key (base64url), when the machine is on the phone and
    /// the backend knows its key.
    pub ble_public_key: Option<String>,
    /// Keys that name the machine, by id.
    pub keys: Vec<AccessKey>,
    /// Every grant of those keys.
    pub grants: Vec<StoredGrant>,
    /// The newest revocation list for the machine.
    pub revocations: Option<Vec<u8>>,
    /// Per key id: the grant the machine has cached.
    pub cached: Vec<(String, CachedGrant)>,
}

impl Store {
    pub(crate) fn machine_access(&self, machine_id: &str) -> Result<MachineAccess, StoreError> {
        let ble_public_key: Option<String> = self
            .conn
            .query_row(
                "SELECT ble_public_key FROM machines WHERE id = ?1",
                [machine_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let mut keys = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT k.id, k.access_type, k.valid_from_s, k.valid_from_ns, k.valid_to_s, k.valid_to_ns,
                        k.revoked
                 FROM key_machines km JOIN keys k ON k.id = km.key_id
                 WHERE km.machine_id = ?1 ORDER BY k.id",
            )?;
            let mut rows = stmt.query([machine_id])?;
            while let Some(r) = rows.next()? {
                keys.push(AccessKey {
                    id: r.get(0)?,
                    access_type: stored_enum(r, 1, &AccessType::ALL, |t| t.as_str())?,
                    validity: Validity {
                        valid_from: from_parts(r.get(2)?, r.get(3)?)?,
                        valid_to: from_parts(r.get(4)?, r.get(5)?)?,
                    },
                    revoked: r.get(6)?,
                });
            }
        }
        let mut grants = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT serial, issued_at, grant_bytes FROM grants WHERE key_id = ?1 ORDER BY machines",
            )?;
            for key in &keys {
                let mut rows = stmt.query([&key.id])?;
                while let Some(r) = rows.next()? {
                    grants.push(StoredGrant {
                        key_id: key.id.clone(),
                        serial: u32::try_from(r.get::<_, i64>(0)?).map_err(|_| StoreError::Corrupt)?,
                        issued_at: u64::try_from(r.get::<_, i64>(1)?).map_err(|_| StoreError::Corrupt)?,
                        bytes: r.get(2)?,
                    });
                }
            }
        }
        let revocations: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT list_bytes FROM revocation_lists WHERE machine_id = ?1",
                [machine_id],
                |r| r.get(0),
            )
            .optional()?;
        let mut cached = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT key_id, serial, issued_at FROM machine_grants WHERE machine_id = ?1",
            )?;
            let mut rows = stmt.query([machine_id])?;
            while let Some(r) = rows.next()? {
                let grant = CachedGrant {
                    serial: u32::try_from(r.get::<_, i64>(1)?).map_err(|_| StoreError::Corrupt)?,
                    issued_at: u64::try_from(r.get::<_, i64>(2)?).map_err(|_| StoreError::Corrupt)?,
                };
                cached.push((r.get(0)?, grant));
            }
        }
        Ok(MachineAccess {
            ble_public_key,
            keys,
            grants,
            revocations,
            cached,
        })
    }

    /// The machine verified and cached this grant of `key_id`.
    pub(crate) fn remember_cached_grant(
        &self,
        machine_id: &str,
        key_id: &str,
        grant: CachedGrant,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO machine_grants (machine_id, key_id, serial, issued_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                machine_id,
                key_id,
                i64::from(grant.serial),
                grant.issued_at as i64
            ],
        )?;
        Ok(())
    }

    /// The machine no longer holds a grant of `key_id` (it asked for the full grant).
    pub(crate) fn forget_cached_grant(&self, machine_id: &str, key_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM machine_grants WHERE machine_id = ?1 AND key_id = ?2",
            params![machine_id, key_id],
        )?;
        Ok(())
    }

    /// The backend's grant-signing key, from the last sync that carried it.
    pub(crate) fn issuer_public_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT issuer_public_key FROM phone WHERE id = 1", [], |r| {
                r.get(0)
            })?)
    }
}

/// The Digital Key part of applying a sync, inside its transaction, after the keys.
/// A grant replaces an older one of the same key and machines, and any grant of an older
/// version (serial) of the key; grants of keys no longer on the phone go with the key.
pub(super) fn apply_sync(tx: &Transaction<'_>, batch: &SyncBatch) -> rusqlite::Result<()> {
    {
        let mut newest = tx.prepare_cached("SELECT max(serial) FROM grants WHERE key_id = ?1")?;
        let mut held =
            tx.prepare_cached("SELECT serial, issued_at FROM grants WHERE key_id = ?1 AND machines = ?2")?;
        let mut drop_older = tx.prepare_cached("DELETE FROM grants WHERE key_id = ?1 AND serial < ?2")?;
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO grants (key_id, machines, serial, valid_from, valid_to, issued_at, grant_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        // In key order (stable: one key's grants keep the order they came in), so that
        // inserts land next to each other in the grants B-tree.
        let mut grants: Vec<_> = batch.grants.iter().collect();
        grants.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        for g in grants {
            let serial = i64::from(g.serial);
            let newest: Option<i64> = newest.query_row([&g.key_id], |r| r.get(0))?;
            if newest.is_some_and(|n| n > serial) {
                continue;
            }
            let held: Option<(i64, i64)> = held
                .query_row(params![g.key_id, g.chunk], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if held.is_some_and(|h| h > (serial, g.issued_at as i64)) {
                continue;
            }
            drop_older.execute(params![g.key_id, serial])?;
            put.execute(params![
                g.key_id,
                g.chunk,
                serial,
                g.valid_from as i64,
                g.valid_to as i64,
                g.issued_at as i64,
                g.bytes
            ])?;
        }
        let mut put_list = tx.prepare_cached(
            "INSERT INTO revocation_lists (machine_id, sequence, list_bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (machine_id) DO UPDATE SET sequence = excluded.sequence, list_bytes = excluded.list_bytes
             WHERE excluded.sequence > revocation_lists.sequence",
        )?;
        for l in &batch.revocations {
            put_list.execute(params![l.machine_id, i64::from(l.sequence), l.bytes])?;
        }
    }
    // Gone with their key. A full sync replaced every key, so whatever has no key left
    // goes; a delta only drops the keys it names (a sweep of every grant would make even
    // an idle sync grow with the fleet: PERFORMANCE.md "Scaling").
    if batch.full {
        tx.execute_batch(
            "DELETE FROM grants WHERE key_id NOT IN (SELECT id FROM keys);
             DELETE FROM machine_grants WHERE key_id NOT IN (SELECT id FROM keys);",
        )?;
    } else {
        let mut drop_grants = tx.prepare_cached("DELETE FROM grants WHERE key_id = ?1")?;
        let mut drop_machine_grants = tx.prepare_cached("DELETE FROM machine_grants WHERE key_id = ?1")?;
        for id in &batch.deleted_key_ids {
            drop_grants.execute([id])?;
            drop_machine_grants.execute([id])?;
        }
    }
    if let Some(issuer) = &batch.issuer_public_key {
        tx.execute("UPDATE phone SET issuer_public_key = ?1 WHERE id = 1", [issuer])?;
    }
    Ok(())
}
