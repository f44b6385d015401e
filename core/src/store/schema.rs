//! The store's schema and its migrations. `PRAGMA application_id` marks the file as
//! ours; `PRAGMA user_version` is the schema version. Migration `n` (1-based) takes the
//! schema from version `n - 1` to `n`; all pending ones run in one transaction.

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of an OpKey store: "OPKY".
pub const APPLICATION_ID: i32 = 0x4F50_4B59;
/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Times are stored as (unix seconds, nanoseconds) pairs: exact and cheap to compare.
const V1: &str = "
CREATE TABLE vault (
    slot   TEXT PRIMARY KEY NOT NULL,
    sealed BLOB NOT NULL
) WITHOUT ROWID;

-- One row: who this phone is and where sync stands.
CREATE TABLE phone (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    server_url         TEXT,
    phone_id           TEXT,
    operator_id        TEXT,
    operator_name      TEXT,
    operator_phone     TEXT,
    revoked            INTEGER NOT NULL DEFAULT 0,
    cursor             INTEGER NOT NULL DEFAULT 0,
    server_offset_ms   INTEGER,
    last_sync_s        INTEGER,
    last_sync_ns       INTEGER,
    pending_server_url TEXT
);
INSERT INTO phone (id) VALUES (1);

CREATE TABLE organizations (
    id       TEXT PRIMARY KEY NOT NULL,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE machines (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    serial          TEXT NOT NULL,
    unit_type       TEXT NOT NULL,
    keypad          TEXT NOT NULL,
    ble_public_key  TEXT
) WITHOUT ROWID;

CREATE TABLE keys (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    access_type     TEXT NOT NULL,
    operator_id     TEXT,
    description     TEXT NOT NULL,
    valid_from_s    INTEGER NOT NULL,
    valid_from_ns   INTEGER NOT NULL,
    valid_to_s      INTEGER NOT NULL,
    valid_to_ns     INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    revoked         INTEGER NOT NULL,
    card_id         TEXT
) WITHOUT ROWID;

CREATE TABLE key_machines (
    key_id     TEXT NOT NULL,
    position   INTEGER NOT NULL,
    machine_id TEXT NOT NULL,
    PRIMARY KEY (key_id, position)
) WITHOUT ROWID;
CREATE INDEX key_machines_by_machine ON key_machines (machine_id);
";

/// The Digital Key: grants, revocation lists, the issuer key, what each machine has cached,
/// and the outbox of usage events. Grants and lists are not secret (the machine verifies
/// their issuer signatures) and are kept as the bytes the backend signed.
const V2: &str = "
ALTER TABLE phone ADD COLUMN issuer_public_key BLOB;

-- One row per grant: a key on more than 8 machines has several, one per chunk of machines.
CREATE TABLE grants (
    key_id      TEXT NOT NULL,
    machines    TEXT NOT NULL,  -- the grant's machine ids, sorted, one per line: its chunk
    serial      INTEGER NOT NULL,
    valid_from  INTEGER NOT NULL,  -- unix seconds, as in the grant
    valid_to    INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    grant_bytes BLOB NOT NULL,
    PRIMARY KEY (key_id, machines)
) WITHOUT ROWID;

-- The newest issuer-signed revocation list of each machine, carried to it on unlock.
CREATE TABLE revocation_lists (
    machine_id TEXT PRIMARY KEY NOT NULL,
    sequence   INTEGER NOT NULL,
    list_bytes BLOB NOT NULL
) WITHOUT ROWID;

-- The grant each machine is known to have cached for a key (it answered a full grant):
-- the next unlock there with the same grant sends the key id only.
CREATE TABLE machine_grants (
    machine_id TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    serial     INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    PRIMARY KEY (machine_id, key_id)
) WITHOUT ROWID;

-- Usage events waiting for (or done with) upload; `id` is the idempotency key.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    operator_id TEXT NOT NULL,  -- whose attempt: uploaded only by a phone of this operator
    payload     TEXT NOT NULL,  -- the UsageEvent as JSON
    created_s   INTEGER NOT NULL,
    uploaded_s  INTEGER
);
CREATE INDEX outbox_pending ON outbox (operator_id, seq) WHERE uploaded_s IS NULL;
";

/// PINs: a Rolling PIN key's public settings on its row, and the PIN secrets (Rolling PIN
/// seeds, personal Static PINs) sealed under the data key, one row per key, removed with
/// it. A store that already holds PIN keys synced before this version has no secret for
/// them: its cursor goes back to 0 so the next sync fetches everything again.
const V3: &str = "
ALTER TABLE keys ADD COLUMN pin_slot INTEGER;
ALTER TABLE keys ADD COLUMN pin_algorithm TEXT;
ALTER TABLE keys ADD COLUMN pin_digits INTEGER;
ALTER TABLE keys ADD COLUMN pin_period_s INTEGER;

CREATE TABLE pin_secrets (
    key_id  TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    kind    TEXT NOT NULL,  -- 'seed' (Rolling PIN) or 'static' (personal Static PIN)
    sealed  BLOB NOT NULL   -- AES-256-GCM envelope under the data key
) WITHOUT ROWID;

UPDATE phone SET cursor = 0
WHERE EXISTS (SELECT 1 FROM keys WHERE access_type IN ('rolling-pin', 'static-pin'));
";

/// Brings a fresh or older store up to [`SCHEMA_VERSION`]. The caller has checked that
/// the file is ours (or empty) and not newer.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let current: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}
