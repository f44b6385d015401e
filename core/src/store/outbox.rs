//! The outbox of usage events: every unlock or lock attempt is written here before the
//! attempt returns, and stays until the backend has acknowledged it. Each event carries a
//! random id the backend deduplicates by, so an upload repeated after a lost answer or a
//! crash is harmless. Uploaded events are kept a while (for the app's history), then
//! pruned.

use super::StoreError;
use super::db::Store;
use opkey_protocol::api::UsageEvent;
use rusqlite::params;

/// How long an uploaded event stays on the phone.
const KEEP_UPLOADED_S: i64 = 30 * 86_400;

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxRow {
    pub event: UsageEvent,
    /// Unix seconds (phone time, server-corrected) of the acknowledged upload.
    pub uploaded_s: Option<i64>,
}

impl Store {
    /// Queues `event`, recorded while `operator_id` held the phone.
    pub(crate) fn add_to_outbox(&self, operator_id: &str, event: &UsageEvent) -> Result<(), StoreError> {
        let payload = serde_json::to_string(event).map_err(|e| StoreError::Sqlite {
            reason: format!("a usage event could not be written: {e}"),
        })?;
        self.conn.execute(
            "INSERT INTO outbox (id, operator_id, payload, created_s) VALUES (?1, ?2, ?3, ?4)",
            params![event.id, operator_id, payload, event.at.unix_timestamp()],
        )?;
        Ok(())
    }

    /// The oldest `limit` events of `operator_id` not yet acknowledged, oldest first.
    pub(crate) fn pending_events(
        &self,
        operator_id: &str,
        limit: usize,
    ) -> Result<Vec<UsageEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT payload FROM outbox WHERE operator_id = ?1 AND uploaded_s IS NULL ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![operator_id, limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(parse(r.get_ref(0)?.as_str().map_err(|_| StoreError::Corrupt)?)?);
        }
        Ok(out)
    }

    pub(crate) fn pending_event_count(&self, operator_id: &str) -> Result<u32, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE operator_id = ?1 AND uploaded_s IS NULL",
            [operator_id],
            |r| r.get(0),
        )?;
        Ok(n as u32)
    }

    /// The backend acknowledged `ids`: marks them, in one transaction, and prunes
    /// events acknowledged long ago.
    pub(crate) fn mark_uploaded(&mut self, ids: &[String], now_s: i64) -> Result<(), StoreError> {
        let tx = self.write()?;
        {
            let mut mark =
                tx.prepare_cached("UPDATE outbox SET uploaded_s = ?2 WHERE id = ?1 AND uploaded_s IS NULL")?;
            for id in ids {
                mark.execute(params![id, now_s])?;
            }
        }
        tx.execute(
            "DELETE FROM outbox WHERE uploaded_s IS NOT NULL AND uploaded_s < ?1",
            [now_s - KEEP_UPLOADED_S],
        )?;
        Ok(tx.commit()?)
    }

    /// Every event on the phone, oldest first.
    pub(crate) fn outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT payload, uploaded_s FROM outbox ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(OutboxRow {
                event: parse(r.get_ref(0)?.as_str().map_err(|_| StoreError::Corrupt)?)?,
                uploaded_s: r.get(1)?,
            });
        }
        Ok(out)
    }
}

fn parse(payload: &str) -> Result<UsageEvent, StoreError> {
    serde_json::from_str(payload).map_err(|_| StoreError::Corrupt)
}
