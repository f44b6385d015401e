//! The one place that talks to SQLite. Owns the connection, the schema and every query;
//! callers hand it a closure that runs on a blocking thread with the connection, and do
//! any multi-row change inside one transaction ([`Db::write`]).
//!
//! Timestamps are stored as fixed-width UTC RFC 3339 text with nanoseconds, so they sort
//! and compare as text and round-trip exactly. Secrets are stored only as SHA-256
//! digests. This module never logs.

pub mod events;
pub mod grants;
pub mod invites;
pub mod keys;
pub mod machine_usage;
pub mod machines;
pub mod operators;
pub mod organizations;
pub mod outbox;
pub mod phones;
pub mod revocations;
pub mod schema;
pub mod sequence;
pub mod sessions;
pub mod users;

use crate::error::{ApiError, ServerError};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, Transaction, TransactionBehavior};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The database: one SQLite connection shared by all requests. SQLite has one writer
/// anyway; serialising on a mutex keeps every transaction simple and race-free.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (or creates) the file, switches to WAL and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, ServerError> {
        let mut conn = Connection::open(path).map_err(|source| ServerError::OpenDatabase {
            path: path.to_owned(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A page cache of up to 64 MiB (SQLite's default is 2 MiB): a phone's first sync
        // issues a grant per Digital Key in one transaction, and with the default cache a
        // fleet of 60,000 keys thrashed it (1.1 million page writes; the sync outlasted the
        // phone's 15 s timeout). PERFORMANCE.md "Scaling".
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` inside one immediate transaction, committed when `f` returns `Ok`.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` inside one transaction on the calling thread; for startup only.
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = guard.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

const TS_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// A timestamp column: UTC, fixed width, nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ts(pub OffsetDateTime);

impl ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = self
            .0
            .to_offset(time::UtcOffset::UTC)
            .format(TS_FORMAT)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::from(text))
    }
}

impl FromSql for Ts {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        time::PrimitiveDateTime::parse(text, TS_FORMAT)
            .map(|t| Ts(t.assume_utc()))
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Reads column `idx` as a timestamp.
pub fn ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    Ok(row.get::<_, Ts>(idx)?.0)
}

/// Reads an optional timestamp column.
pub fn opt_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(row.get::<_, Option<Ts>>(idx)?.map(|t| t.0))
}

/// Reads a text column holding a value written with its `as_str`/`Display` form.
pub fn parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let text: String = row.get(idx)?;
    text.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()),
        )
    })
}

/// Reads an optional text column like [`parsed`].
pub fn opt_parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => parsed(row, idx).map(Some),
    }
}

/// Splits a `group_concat(…, ',')` column into ids (ids never contain commas).
pub fn id_list(text: Option<String>) -> Vec<String> {
    text.map(|t| t.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_round_trip_exactly_and_sort_as_text() {
        let conn = Connection::open_in_memory().unwrap();
        let a = datetime!(2026-01-02 03:04:05.123456789 +02:00);
        let b = datetime!(2026-01-02 01:04:05.2 UTC);
        let (back, less): (Ts, bool) = conn
            .query_row("SELECT ?1, ?2 < ?3", (Ts(a), Ts(a), Ts(b)), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(back.0, a);
        assert!(less);
    }
}
