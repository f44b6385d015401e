//! The global change sequence that sync cursors count in. Every change a phone must
//! learn about (a key created, edited, revoked or deleted; a machine changed) takes the
//! next value inside the transaction that makes the change.

use rusqlite::Connection;

/// Takes the next sequence value.
pub fn next(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "UPDATE change_sequence SET value = value + 1 WHERE id = 1 RETURNING value",
        [],
        |r| r.get(0),
    )
}

/// The latest value handed out.
pub fn current(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM change_sequence WHERE id = 1", [], |r| r.get(0))
}
