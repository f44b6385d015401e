//! PIN rows: a Rolling PIN key's public settings (on its `keys` row) and the PIN secrets
//! (Rolling PIN seeds, personal Static PINs) in `pin_secrets`, each sealed under the data
//! key with the key id and kind bound in, so a sealed seed copied onto another key's row
//! does not open. A secret goes with its key: every path that removes keys removes it.

use super::StoreError;
use super::db::{Store, from_parts, stored_enum};
use crate::pin::PinSecret;
use crate::secrets::envelope::{DataKey, EnvelopeError};
use crate::sync::batch::{BatchPinSecret, SyncBatch};
use opkey_protocol::model::{RollingPinInfo, Validity};
use opkey_protocol::pin::{KeypadSlot, PinAlgorithm, PinSeed};
use opkey_protocol::{AccessType, KeyState};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const KIND_SEED: &str = "seed";
const KIND_STATIC: &str = "static";

/// A PIN secret sealed and ready to write.
pub(crate) struct SealedPin {
    key_id: String,
    version: u64,
    kind: &'static str,
    sealed: Vec<u8>,
}

/// What the PIN views need of one key: its access type, validity and settings, and its
/// secret (opened), if the phone holds one.
#[derive(Debug, Clone)]
pub(crate) struct PinKeyRecord {
    pub id: String,
    pub access_type: AccessType,
    pub validity: Validity,
    pub revoked: bool,
    pub rolling_pin: Option<RollingPinInfo>,
    pub secret: Option<PinSecret>,
}

impl PinKeyRecord {
    pub(crate) fn state_at(&self, now: OffsetDateTime) -> KeyState {
        KeyState::at(&self.validity, self.revoked, now)
    }
}

fn place(key_id: &str, kind: &str) -> String {
    format!("pin:{kind}:{key_id}")
}

pub(super) fn seal_all(key: &DataKey, secrets: &[BatchPinSecret]) -> Result<Vec<SealedPin>, StoreError> {
    secrets
        .iter()
        .map(|s| {
            let (kind, plain): (&'static str, &[u8]) = match &s.secret {
                PinSecret::Seed(seed) => (KIND_SEED, seed.as_bytes()),
                PinSecret::Static(pin) => (KIND_STATIC, pin.as_bytes()),
            };
            let sealed = key.seal(&place(&s.key_id, kind), plain).map_err(|e| match e {
                EnvelopeError::NoRandomness => StoreError::Sqlite {
                    reason: "no system randomness to seal a secret".into(),
                },
                _ => StoreError::SecretUnreadable {
                    slot: format!("PIN of key {}", s.key_id),
                },
            })?;
            Ok(SealedPin {
                key_id: s.key_id.clone(),
                version: s.version,
                kind,
                sealed,
            })
        })
        .collect()
}

/// The PIN part of applying a sync, inside its transaction, after the keys.
pub(super) fn apply_sync(
    tx: &Transaction<'_>,
    batch: &SyncBatch,
    sealed: &[SealedPin],
) -> rusqlite::Result<()> {
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO pin_secrets (key_id, version, kind, sealed) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for s in sealed {
            put.execute(params![s.key_id, s.version as i64, s.kind, s.sealed])?;
        }
    }
    // Gone with its key, or with the key's PIN access: after a full sync, every secret
    // without a PIN key; after a delta, only those of the keys it deleted or changed.
    const NOT_A_PIN_KEY: &str =
        "key_id NOT IN (SELECT id FROM keys WHERE access_type IN ('rolling-pin', 'static-pin'))";
    if batch.full {
        tx.execute(&format!("DELETE FROM pin_secrets WHERE {NOT_A_PIN_KEY}"), [])?;
    } else {
        let mut drop = tx.prepare_cached(&format!(
            "DELETE FROM pin_secrets WHERE key_id = ?1 AND {NOT_A_PIN_KEY}"
        ))?;
        for id in batch
            .deleted_key_ids
            .iter()
            .chain(batch.keys.iter().map(|k| &k.id))
        {
            drop.execute([id])?;
        }
    }
    Ok(())
}

/// Reads the Rolling PIN settings stored from column `first` (slot, algorithm, digits,
/// period); `None` when the key has none.
pub(super) fn rolling_info_from_row(r: &Row<'_>, first: usize) -> Result<Option<RollingPinInfo>, StoreError> {
    let slot: Option<u16> = r.get(first)?;
    let Some(slot) = slot else {
        return Ok(None);
    };
    let algorithm = stored_enum(r, first + 1, &PinAlgorithm::ALL, |a| a.as_str())?;
    Ok(Some(RollingPinInfo {
        slot: KeypadSlot::new(slot).map_err(|_| StoreError::Corrupt)?,
        algorithm,
        digits: r.get(first + 2)?,
        period_s: r.get(first + 3)?,
    }))
}

impl Store {
    /// One key as the PIN views need it, its secret opened; `None` when no such key.
    pub(crate) fn pin_key(&self, id: &str) -> Result<Option<PinKeyRecord>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT k.id, k.access_type, k.valid_from_s, k.valid_from_ns, k.valid_to_s, k.valid_to_ns,
                        k.revoked, k.pin_slot, k.pin_algorithm, k.pin_digits, k.pin_period_s, p.kind, p.sealed
                 FROM keys k LEFT JOIN pin_secrets p ON p.key_id = k.id WHERE k.id = ?1",
            )?
            .query_row([id], |r| {
                Ok((|| -> Result<_, StoreError> {
                    let kind: Option<String> = r.get(11)?;
                    let sealed: Option<Vec<u8>> = r.get(12)?;
                    Ok((
                        PinKeyRecord {
                            id: r.get(0)?,
                            access_type: stored_enum(r, 1, &AccessType::ALL, |t| t.as_str())?,
                            validity: Validity {
                                valid_from: from_parts(r.get(2)?, r.get(3)?)?,
                                valid_to: from_parts(r.get(4)?, r.get(5)?)?,
                            },
                            revoked: r.get(6)?,
                            rolling_pin: rolling_info_from_row(r, 7)?,
                            secret: None,
                        },
                        kind.zip(sealed),
                    ))
                })())
            })
            .optional()?
            .transpose()?;
        let Some((mut record, sealed)) = row else {
            return Ok(None);
        };
        if let Some((kind, sealed)) = sealed {
            let unreadable = || StoreError::SecretUnreadable {
                slot: format!("PIN of key {id}"),
            };
            let mut plain = self
                .key
                .open(&place(id, &kind), &sealed)
                .map_err(|_| unreadable())?;
            // Moved out, not copied: the only plaintext buffer is the one zeroed on drop.
            let bytes = std::mem::take(&mut *plain);
            record.secret = Some(match kind.as_str() {
                KIND_SEED => PinSecret::Seed(PinSeed::new(bytes).map_err(|_| unreadable())?),
                KIND_STATIC => PinSecret::Static(Zeroizing::new(
                    String::from_utf8(bytes).map_err(|_| unreadable())?,
                )),
                _ => return Err(StoreError::Corrupt),
            });
        }
        Ok(Some(record))
    }

    #[cfg(test)]
    pub(crate) fn pin_secret_count(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM pin_secrets", [], |r| r.get(0))?)
    }

    /// The smallest Rolling PIN period of the keys on the phone, if any.
    pub(crate) fn shortest_pin_period(&self) -> Result<Option<u32>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT min(pin_period_s) FROM keys", [], |r| r.get(0))?)
    }
}
