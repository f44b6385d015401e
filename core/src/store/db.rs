//! [`Store`]: the SQLite connection and every query the core runs.

use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};
use super::{DB_FILE_NAME, StoreError};
use crate::error::Error;
use crate::secrets::envelope::{DataKey, EnvelopeError};
use crate::secrets::{DATA_KEY_NAME, SecretStore, SecretStoreError};
use crate::sync::batch::SyncBatch;
use crate::views::{Enrollment, KeyView, MachineView};
use opkey_protocol::api::OperatorProfile;
use opkey_protocol::model::Validity;
use opkey_protocol::{AccessType, KeyState, Keypad, Organization, PhoneNumber, TelematicsUnit};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;
use zeroize::Zeroizing;

/// Vault slots.
pub(crate) const SLOT_KEY_CHECK: &str = "key-check";
pub(crate) const SLOT_SIGNER: &str = "signer";
pub(crate) const SLOT_INVITE: &str = "invite";
/// What the key-check envelope holds: proves at open that the data key is the one the
/// store was created with.
const KEY_CHECK_PLAINTEXT: &[u8] = b"opkey key check v1";

/// The phone row: enrollment and sync state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PhoneState {
    /// The server remembered from the last redeem.
    pub server_url: Option<Url>,
    pub phone_id: Option<String>,
    pub operator: Option<OperatorProfile>,
    pub revoked: bool,
    pub cursor: u64,
    pub server_offset_ms: Option<i64>,
    pub last_sync_at: Option<OffsetDateTime>,
    /// Server of a redeem that has no final answer yet (its secret is in the vault).
    pub pending_server_url: Option<Url>,
}

/// What applying a sync changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    pub upserted: u32,
    pub deleted: u32,
}

pub(crate) struct Store {
    pub(super) conn: Connection,
    pub(super) key: DataKey,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) `dir/opkey.db` and unlocks it with the data key.
    pub(crate) fn open(dir: &Path, secrets: &dyn SecretStore) -> Result<Self, Error> {
        create_dir(dir)?;
        let path = dir.join(DB_FILE_NAME);
        let mut conn = Connection::open(&path).map_err(StoreError::from)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(StoreError::from)?;
        check_ownership(&conn)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(StoreError::from)?;
        // A page cache of up to 16 MiB (SQLite's default is 2 MiB), used only as the store
        // grows: a first sync stores every key and grant, and a large one thrashed the
        // default cache (PERFORMANCE.md "Scaling").
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON; PRAGMA cache_size = -16384;",
        )
        .map_err(StoreError::from)?;
        schema::migrate(&mut conn).map_err(StoreError::from)?;

        let key = unlock(&conn, secrets)?;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Self { conn, key, path })
    }

    // ---- vault --------------------------------------------------------------------

    pub(crate) fn load_secret(&self, slot: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT sealed FROM vault WHERE slot = ?1", [slot], |r| r.get(0))
            .optional()?;
        sealed
            .map(|s| {
                self.key
                    .open(&place(slot), &s)
                    .map_err(|_| StoreError::SecretUnreadable { slot: slot.into() })
            })
            .transpose()
    }

    pub(crate) fn save_secret(&self, slot: &str, value: &[u8]) -> Result<(), StoreError> {
        save_sealed(&self.conn, &self.key, slot, value)
    }

    // ---- enrollment ---------------------------------------------------------------

    pub(crate) fn phone(&self) -> Result<PhoneState, StoreError> {
        let row = self.conn.query_row(
            "SELECT server_url, phone_id, operator_id, operator_name, operator_phone, revoked, cursor,
                    server_offset_ms, last_sync_s, last_sync_ns, pending_server_url
             FROM phone WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                ))
            },
        )?;
        let (server, phone_id, op_id, op_name, op_phone, revoked, cursor, offset, ls, lns, pending) = row;
        let operator = match (op_id, op_name, op_phone) {
            (Some(id), Some(name), Some(phone)) => Some(OperatorProfile {
                id,
                name,
                phone: PhoneNumber::parse(&phone).map_err(|_| StoreError::Corrupt)?,
            }),
            _ => None,
        };
        let last_sync_at = match (ls, lns) {
            (Some(s), Some(ns)) => Some(from_parts(s, ns)?),
            _ => None,
        };
        Ok(PhoneState {
            server_url: parse_url(server)?,
            phone_id,
            operator,
            revoked,
            cursor: cursor as u64,
            server_offset_ms: offset,
            last_sync_at,
            pending_server_url: parse_url(pending)?,
        })
    }

    pub(crate) fn organizations(&self) -> Result<Vec<Organization>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM organizations ORDER BY position, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Organization {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps the invite secret sealed while its redeem has no final answer.
    pub(crate) fn begin_redeem(&mut self, secret: &[u8], server: &Url) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        save_sealed(&tx, &self.key, SLOT_INVITE, secret)?;
        tx.execute(
            "UPDATE phone SET pending_server_url = ?1 WHERE id = 1",
            [server.as_str()],
        )?;
        Ok(tx.commit()?)
    }

    /// Forgets the pending invite (the server refused it for good).
    pub(crate) fn abandon_redeem(&mut self) -> Result<(), StoreError> {
        let tx = self.write()?;
        clear_pending(&tx)?;
        Ok(tx.commit()?)
    }

    /// Records a redeemed invite. Another operator's keys and cursor are cleared in the
    /// same transaction. Returns true when they were.
    pub(crate) fn save_enrollment(&mut self, e: &Enrollment, offset_ms: i64) -> Result<bool, StoreError> {
        let tx = self.write()?;
        let previous: Option<String> =
            tx.query_row("SELECT operator_id FROM phone WHERE id = 1", [], |r| r.get(0))?;
        let switched = previous.is_some_and(|p| p != e.operator.id);
        if switched {
            clear_keys(&tx)?;
            tx.execute(
                "UPDATE phone SET cursor = 0, last_sync_s = NULL, last_sync_ns = NULL WHERE id = 1",
                [],
            )?;
        }
        tx.execute(
            "UPDATE phone SET server_url = ?1, phone_id = ?2, operator_id = ?3, operator_name = ?4,
                 operator_phone = ?5, revoked = 0, server_offset_ms = ?6
             WHERE id = 1",
            params![
                e.server_url.as_str(),
                e.phone_id,
                e.operator.id,
                e.operator.name,
                e.operator.phone.as_str(),
                offset_ms
            ],
        )?;
        replace_organizations(&tx, &e.organizations)?;
        clear_pending(&tx)?;
        tx.commit()?;
        Ok(switched)
    }

    /// The backend withdrew this phone: mark it and remove every key, in one transaction.
    pub(crate) fn revoke(&mut self) -> Result<u32, StoreError> {
        let tx = self.write()?;
        let removed: i64 = tx.query_row("SELECT count(*) FROM keys", [], |r| r.get(0))?;
        clear_keys(&tx)?;
        tx.execute("UPDATE phone SET revoked = 1, cursor = 0 WHERE id = 1", [])?;
        tx.commit()?;
        Ok(removed as u32)
    }

    // ---- sync ---------------------------------------------------------------------

    /// Applies every page of one sync in one transaction.
    pub(crate) fn apply_sync(
        &mut self,
        batch: &SyncBatch,
        offset_ms: i64,
        synced_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        // Sealed before the transaction: sealing needs the data key, the transaction `self`.
        let sealed_pins = super::pins::seal_all(&self.key, &batch.pin_secrets)?;
        let tx = self.write()?;
        let mut deleted = 0u32;
        if batch.full {
            // Everything the server holds is in the batch: whatever else is here is gone.
            let incoming: HashSet<&str> = batch.keys.iter().map(|k| k.id.as_str()).collect();
            let mut stmt = tx.prepare("SELECT id FROM keys")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                if !incoming.contains(row.get_ref(0)?.as_str().map_err(|_| StoreError::Corrupt)?) {
                    deleted += 1;
                }
            }
            drop(rows);
            drop(stmt);
            clear_keys(&tx)?;
        } else {
            let mut del_key = tx.prepare_cached("DELETE FROM keys WHERE id = ?1")?;
            let mut del_links = tx.prepare_cached("DELETE FROM key_machines WHERE key_id = ?1")?;
            for id in &batch.deleted_key_ids {
                deleted += del_key.execute([id])? as u32;
                del_links.execute([id])?;
            }
        }
        {
            let mut put_key = tx.prepare_cached(
                "INSERT OR REPLACE INTO keys (id, organization_id, access_type, operator_id, description,
                     valid_from_s, valid_from_ns, valid_to_s, valid_to_ns, version, revoked, card_id,
                     pin_slot, pin_algorithm, pin_digits, pin_period_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            let mut del_links = tx.prepare_cached("DELETE FROM key_machines WHERE key_id = ?1")?;
            let mut put_link = tx.prepare_cached(
                "INSERT INTO key_machines (key_id, position, machine_id) VALUES (?1, ?2, ?3)",
            )?;
            // In id order: each insert lands next to the previous one in the keys B-tree
            // (ids are random), which keeps a large first sync in the page cache.
            let mut keys: Vec<_> = batch.keys.iter().collect();
            keys.sort_by(|a, b| a.id.cmp(&b.id));
            for k in keys {
                let (fs, fns) = to_parts(k.validity.valid_from);
                let (ts, tns) = to_parts(k.validity.valid_to);
                put_key.execute(params![
                    k.id,
                    k.organization_id,
                    k.access_type.as_str(),
                    k.operator_id,
                    k.description,
                    fs,
                    fns,
                    ts,
                    tns,
                    k.version as i64,
                    k.revoked,
                    k.card_id,
                    k.rolling_pin.map(|p| p.slot.get()),
                    k.rolling_pin.map(|p| p.algorithm.as_str()),
                    k.rolling_pin.map(|p| p.digits),
                    k.rolling_pin.map(|p| p.period_s)
                ])?;
                if !batch.full {
                    del_links.execute([&k.id])?;
                }
                for (pos, m) in k.machine_ids.iter().enumerate() {
                    put_link.execute(params![k.id, pos as i64, m])?;
                }
            }
            let mut put_machine = tx.prepare_cached(
                "INSERT OR REPLACE INTO machines (id, organization_id, name, serial, unit_type, keypad, ble_public_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for m in &batch.machines {
                put_machine.execute(params![
                    m.id,
                    m.organization_id,
                    m.name,
                    m.serial,
                    m.unit_type.as_str(),
                    m.keypad.as_str(),
                    m.ble_public_key
                ])?;
            }
        }
        tx.execute(
            "DELETE FROM machines WHERE id NOT IN (SELECT machine_id FROM key_machines)",
            [],
        )?;
        super::digital_key::apply_sync(&tx, batch)?;
        super::pins::apply_sync(&tx, batch, &sealed_pins)?;
        replace_organizations(&tx, &batch.organizations)?;
        let (ss, sns) = to_parts(synced_at);
        tx.execute(
            "UPDATE phone SET operator_id = ?1, operator_name = ?2, operator_phone = ?3, cursor = ?4,
                 server_offset_ms = ?5, last_sync_s = ?6, last_sync_ns = ?7
             WHERE id = 1",
            params![
                batch.operator.id,
                batch.operator.name,
                batch.operator.phone.as_str(),
                batch.cursor as i64,
                offset_ms,
                ss,
                sns
            ],
        )?;
        tx.commit()?;
        Ok(Applied {
            upserted: batch.keys.len() as u32,
            deleted,
        })
    }

    // ---- keys ---------------------------------------------------------------------

    /// Every key with its state at `now`: usable first, then by machine name.
    pub(crate) fn keys(&self, now: OffsetDateTime) -> Result<Vec<KeyView>, StoreError> {
        // Both queries walk their primary keys in key-id order: a merge join, no hashing.
        let mut links = self.conn.prepare_cached(
            "SELECT km.key_id, m.id, m.name, m.serial, m.unit_type, m.keypad
             FROM key_machines km JOIN machines m ON m.id = km.machine_id
             ORDER BY km.key_id, km.position",
        )?;
        let mut links = links.query([])?;
        let mut pending: Option<(String, MachineView)> = None;
        let mut stmt = self.conn.prepare_cached(&format!("{KEY_SELECT} ORDER BY k.id"))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut key = key_from_row(row, now)?;
            loop {
                if pending.is_none() {
                    match links.next()? {
                        Some(l) => pending = Some((l.get(0)?, machine_from_row(l, 1)?)),
                        None => break,
                    }
                }
                let Some((key_id, _)) = &pending else { break };
                match key_id.as_str().cmp(key.id.as_str()) {
                    std::cmp::Ordering::Less => pending = None,
                    std::cmp::Ordering::Equal => {
                        if let Some((_, m)) = pending.take() {
                            key.machines.push(m);
                        }
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            sort_machines(&mut key.machines);
            out.push(key);
        }
        // Stable: keys with the same first machine name stay in id order.
        out.sort_by_cached_key(|k| {
            (
                !k.usable,
                k.machines
                    .first()
                    .map(|m| m.name.to_lowercase())
                    .unwrap_or_default(),
            )
        });
        Ok(out)
    }

    pub(crate) fn key(&self, id: &str, now: OffsetDateTime) -> Result<Option<KeyView>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{KEY_SELECT} WHERE k.id = ?1"))?;
        let Some(mut key) = stmt
            .query_row([id], |r| Ok(key_from_row(r, now)))
            .optional()?
            .transpose()?
        else {
            return Ok(None);
        };
        let mut links = self.conn.prepare_cached(
            "SELECT m.id, m.name, m.serial, m.unit_type, m.keypad
             FROM key_machines km JOIN machines m ON m.id = km.machine_id
             WHERE km.key_id = ?1 ORDER BY km.position",
        )?;
        let mut rows = links.query([id])?;
        while let Some(r) = rows.next()? {
            key.machines.push(machine_from_row(r, 0)?);
        }
        sort_machines(&mut key.machines);
        Ok(Some(key))
    }

    /// (all keys, keys usable at `now`).
    pub(crate) fn key_counts(&self, now: OffsetDateTime) -> Result<(u32, u32), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT valid_from_s, valid_from_ns, valid_to_s, valid_to_ns, revoked FROM keys",
        )?;
        let mut rows = stmt.query([])?;
        let (mut all, mut usable) = (0u32, 0u32);
        while let Some(r) = rows.next()? {
            let validity = Validity {
                valid_from: from_parts(r.get(0)?, r.get(1)?)?,
                valid_to: from_parts(r.get(2)?, r.get(3)?)?,
            };
            all += 1;
            if KeyState::at(&validity, r.get(4)?, now).is_usable() {
                usable += 1;
            }
        }
        Ok((all, usable))
    }

    pub(super) fn write(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Test hook: caps the file size so the next large write fails with SQLITE_FULL.
    #[cfg(test)]
    pub(crate) fn limit_pages(&self, pages: u32) {
        let _: i64 = self
            .conn
            .pragma_update_and_check(None, "max_page_count", pages, |r| r.get(0))
            .unwrap();
    }

    #[cfg(test)]
    pub(crate) fn page_count(&self) -> u32 {
        self.conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap()
    }
}

const KEY_SELECT: &str = "SELECT k.id, k.organization_id, COALESCE(o.name, ''), k.access_type, k.operator_id IS NOT NULL,
        k.description, k.valid_from_s, k.valid_from_ns, k.valid_to_s, k.valid_to_ns, k.version, k.revoked, k.card_id,
        k.pin_slot, k.pin_algorithm, k.pin_digits, k.pin_period_s, p.kind
     FROM keys k LEFT JOIN organizations o ON o.id = k.organization_id
     LEFT JOIN pin_secrets p ON p.key_id = k.id";

fn key_from_row(r: &Row<'_>, now: OffsetDateTime) -> Result<KeyView, StoreError> {
    let access_type = stored_enum(r, 3, &AccessType::ALL, |t| t.as_str())?;
    let validity = Validity {
        valid_from: from_parts(r.get(6)?, r.get(7)?)?,
        valid_to: from_parts(r.get(8)?, r.get(9)?)?,
    };
    let revoked: bool = r.get(11)?;
    let state = KeyState::at(&validity, revoked, now);
    Ok(KeyView {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        organization_name: r.get(2)?,
        access_type,
        personal: r.get(4)?,
        description: r.get(5)?,
        valid_from: validity.valid_from,
        valid_to: validity.valid_to,
        version: r.get::<_, i64>(10)? as u64,
        state,
        usable: state.is_usable(),
        machines: Vec::new(),
        card_id: r.get(12)?,
        rolling_pin: super::pins::rolling_info_from_row(r, 13)?,
        pin_synced: r.get::<_, Option<String>>(17)?.is_some(),
    })
}

fn machine_from_row(r: &Row<'_>, first: usize) -> Result<MachineView, StoreError> {
    let text = |i: usize| -> Result<&str, StoreError> {
        r.get_ref(first + i)?.as_str().map_err(|_| StoreError::Corrupt)
    };
    Ok(MachineView {
        id: text(0)?.to_owned(),
        name: text(1)?.to_owned(),
        serial: text(2)?.to_owned(),
        unit_type: stored_enum(r, first + 3, &UNIT_TYPES, |u| u.as_str())?,
        keypad: stored_enum(r, first + 4, &KEYPADS, |k| k.as_str())?,
    })
}

const UNIT_TYPES: [TelematicsUnit; 2] = [TelematicsUnit::Tu600, TelematicsUnit::Tu700];
const KEYPADS: [Keypad; 3] = [Keypad::DualId, Keypad::K300, Keypad::None];

/// An enum stored by its wire name (exact match: the store wrote it).
pub(super) fn stored_enum<T: Copy>(
    r: &Row<'_>,
    column: usize,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, StoreError> {
    let text = r.get_ref(column)?.as_str().map_err(|_| StoreError::Corrupt)?;
    all.iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or(StoreError::Corrupt)
}

fn sort_machines(machines: &mut [MachineView]) {
    if machines.len() > 1 {
        machines.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    }
}

/// Removes the keys and everything that hangs off them (grants, lists, what machines
/// cached). The outbox stays: it records what happened, whoever holds the keys now.
fn clear_keys(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DELETE FROM key_machines; DELETE FROM keys; DELETE FROM machines;
         DELETE FROM grants; DELETE FROM revocation_lists; DELETE FROM machine_grants;
         DELETE FROM pin_secrets;",
    )
}

fn clear_pending(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM vault WHERE slot = ?1", [SLOT_INVITE])?;
    tx.execute("UPDATE phone SET pending_server_url = NULL WHERE id = 1", [])?;
    Ok(())
}

fn replace_organizations(tx: &Transaction<'_>, orgs: &[Organization]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM organizations", [])?;
    let mut put =
        tx.prepare_cached("INSERT OR REPLACE INTO organizations (id, name, position) VALUES (?1, ?2, ?3)")?;
    for (i, o) in orgs.iter().enumerate() {
        put.execute(params![o.id, o.name, i as i64])?;
    }
    Ok(())
}

fn save_sealed(conn: &Connection, key: &DataKey, slot: &str, value: &[u8]) -> Result<(), StoreError> {
    let sealed = key.seal(&place(slot), value).map_err(|e| match e {
        EnvelopeError::NoRandomness => StoreError::Sqlite {
            reason: "no system randomness to seal a secret".into(),
        },
        _ => StoreError::SecretUnreadable { slot: slot.into() },
    })?;
    conn.execute(
        "INSERT OR REPLACE INTO vault (slot, sealed) VALUES (?1, ?2)",
        params![slot, sealed],
    )?;
    Ok(())
}

/// Associated data of a vault envelope: binds it to its slot.
fn place(slot: &str) -> String {
    format!("secret:{slot}")
}

/// Refuses files that are not SQLite, belong to another app, or are newer than us,
/// without writing to them.
fn check_ownership(conn: &Connection) -> Result<(), StoreError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    match app_id {
        APPLICATION_ID if version > SCHEMA_VERSION => Err(StoreError::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        }),
        APPLICATION_ID => Ok(()),
        0 if objects == 0 => Ok(()),
        _ => Err(StoreError::Foreign),
    }
}

/// Gets the data key (creating it for a new store) and proves it is the store's own.
fn unlock(conn: &Connection, secrets: &dyn SecretStore) -> Result<DataKey, Error> {
    let check: Option<Vec<u8>> = conn
        .query_row(
            "SELECT sealed FROM vault WHERE slot = ?1",
            [SLOT_KEY_CHECK],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    let stored = match secrets.load(DATA_KEY_NAME) {
        Ok(stored) => stored.map(Zeroizing::new),
        // The platform lost the key that protected it: the data key is gone.
        Err(SecretStoreError::Invalidated { reason }) => {
            tracing::warn!(%reason, "the platform can no longer open the data key");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let key = match (stored, &check) {
        (Some(bytes), _) => DataKey::from_bytes(&bytes).ok_or(Error::DataKeyMismatch)?,
        // The store was sealed under a key the platform no longer has.
        (None, Some(_)) => return Err(Error::DataKeyMismatch),
        (None, None) => {
            let bytes = DataKey::generate_bytes().map_err(|_| Error::Internal {
                reason: "no system randomness to create the data key".into(),
            })?;
            secrets.save(DATA_KEY_NAME, &bytes)?;
            tracing::info!("created a new data key");
            DataKey::from_bytes(&bytes).ok_or(Error::DataKeyMismatch)?
        }
    };
    match check {
        Some(sealed) => match key.open(&place(SLOT_KEY_CHECK), &sealed) {
            Ok(plain) if plain.as_slice() == KEY_CHECK_PLAINTEXT => {}
            _ => return Err(Error::DataKeyMismatch),
        },
        None => save_sealed(conn, &key, SLOT_KEY_CHECK, KEY_CHECK_PLAINTEXT)?,
    }
    Ok(key)
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let result = {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
        }
        #[cfg(not(unix))]
        {
            std::fs::create_dir_all(dir)
        }
    };
    result.map_err(|e| StoreError::Unavailable {
        reason: format!("{}: {e}", dir.display()),
    })
}

fn parse_url(text: Option<String>) -> Result<Option<Url>, StoreError> {
    text.map(|t| Url::parse(&t).map_err(|_| StoreError::Corrupt))
        .transpose()
}

pub(super) fn to_parts(t: OffsetDateTime) -> (i64, i64) {
    (t.unix_timestamp(), i64::from(t.nanosecond()))
}

pub(super) fn from_parts(secs: i64, nanos: i64) -> Result<OffsetDateTime, StoreError> {
    let nanos = u32::try_from(nanos).map_err(|_| StoreError::Corrupt)?;
    OffsetDateTime::from_unix_timestamp(secs)
        .and_then(|t| t.replace_nanosecond(nanos))
        .map_err(|_| StoreError::Corrupt)
}
