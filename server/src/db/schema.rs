//! Versioned migrations. `PRAGMA user_version` records how many have run; each runs in
//! its own transaction, and a migration once released is never edited, only followed.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the access-management model.
    r#"
    CREATE TABLE organizations (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        is_default  INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL
    );

    CREATE TABLE admin_users (
        id               TEXT PRIMARY KEY,
        organization_id  TEXT NOT NULL REFERENCES organizations(id),
        name             TEXT NOT NULL,
        role             TEXT NOT NULL,
        token_digest     TEXT NOT NULL UNIQUE,
        created_at       TEXT NOT NULL
    );

    -- A person, identified by phone; deleted operators stay as rows so their revoked
    -- phones and invites keep answering precisely.
    CREATE TABLE operators (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        phone        TEXT NOT NULL,
        access_type  TEXT,
        created_at   TEXT NOT NULL,
        deleted_at   TEXT
    );
    CREATE UNIQUE INDEX operators_live_phone ON operators(phone) WHERE deleted_at IS NULL;

    CREATE TABLE memberships (
        operator_id      TEXT NOT NULL REFERENCES operators(id),
        organization_id  TEXT NOT NULL REFERENCES organizations(id),
        created_at       TEXT NOT NULL,
        PRIMARY KEY (operator_id, organization_id)
    ) WITHOUT ROWID;
    CREATE INDEX memberships_organization ON memberships(organization_id, operator_id);

    CREATE TABLE phones (
        id           TEXT PRIMARY KEY,
        operator_id  TEXT NOT NULL REFERENCES operators(id),
        public_key   TEXT NOT NULL,
        device_name  TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        revoked_at   TEXT
    );
    CREATE INDEX phones_operator ON phones(operator_id);

    CREATE TABLE invites (
        id                 TEXT PRIMARY KEY,
        operator_id        TEXT NOT NULL REFERENCES operators(id),
        organization_id    TEXT NOT NULL REFERENCES organizations(id),
        token_digest       TEXT NOT NULL UNIQUE,
        code_digest        TEXT NOT NULL UNIQUE,
        created_at         TEXT NOT NULL,
        expires_at         TEXT NOT NULL,
        redeemed_at        TEXT,
        redeemed_phone_id  TEXT REFERENCES phones(id),
        revoked_at         TEXT,
        sms_id             TEXT
    );
    CREATE INDEX invites_operator ON invites(operator_id, created_at);

    CREATE TABLE challenges (
        challenge   TEXT PRIMARY KEY,
        phone_id    TEXT NOT NULL REFERENCES phones(id),
        expires_at  TEXT NOT NULL,
        used_at     TEXT
    );
    CREATE INDEX challenges_expiry ON challenges(expires_at);

    CREATE TABLE sessions (
        token_digest  TEXT PRIMARY KEY,
        phone_id      TEXT NOT NULL REFERENCES phones(id),
        expires_at    TEXT NOT NULL
    );
    CREATE INDEX sessions_expiry ON sessions(expires_at);

    -- One global, monotonically increasing change counter: the sync cursor.
    CREATE TABLE change_sequence (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        value  INTEGER NOT NULL
    );
    INSERT INTO change_sequence (id, value) VALUES (1, 0);

    CREATE TABLE machines (
        id               TEXT PRIMARY KEY,
        organization_id  TEXT NOT NULL REFERENCES organizations(id),
        name             TEXT NOT NULL,
        serial           TEXT NOT NULL,
        unit_type        TEXT NOT NULL,
        keypad           TEXT NOT NULL,
        ble_public_key   TEXT,
        seq              INTEGER NOT NULL,
        created_at       TEXT NOT NULL
    );
    CREATE INDEX machines_organization ON machines(organization_id);
    CREATE INDEX machines_seq ON machines(seq);

    -- Deleted keys stay as tombstones (deleted_at set, machines unlinked) so phones
    -- learn of the deletion by cursor.
    CREATE TABLE keys (
        id               TEXT PRIMARY KEY,
        organization_id  TEXT NOT NULL REFERENCES organizations(id),
        operator_id      TEXT REFERENCES operators(id),
        access_type      TEXT NOT NULL,
        slot_class       TEXT,
        valid_from       TEXT NOT NULL,
        valid_to         TEXT NOT NULL,
        description      TEXT NOT NULL,
        card_id          TEXT,
        version          INTEGER NOT NULL,
        revoked          INTEGER NOT NULL DEFAULT 0,
        seq              INTEGER NOT NULL,
        created_at       TEXT NOT NULL,
        deleted_at       TEXT
    );
    CREATE INDEX keys_operator_seq ON keys(operator_id, seq);
    CREATE INDEX keys_organization ON keys(organization_id, operator_id);

    CREATE TABLE key_machines (
        key_id      TEXT NOT NULL REFERENCES keys(id),
        machine_id  TEXT NOT NULL REFERENCES machines(id),
        position    INTEGER NOT NULL,
        PRIMARY KEY (key_id, machine_id)
    ) WITHOUT ROWID;
    CREATE INDEX key_machines_machine ON key_machines(machine_id, key_id);

    CREATE TABLE sms_outbox (
        id         TEXT PRIMARY KEY,
        recipient  TEXT NOT NULL,
        body       TEXT NOT NULL,
        sent_at    TEXT NOT NULL
    );
    "#,
    // 2: Digital Key: issued grants, per-machine revocation lists, usage events.
    r#"
    -- The change sequence value up to which this phone's grants were last checked.
    ALTER TABLE phones ADD COLUMN grants_seq INTEGER NOT NULL DEFAULT 0;
    -- The latest valid_to of any grant ever issued for the key: how long a revocation
    -- list must keep refusing its older serials.
    ALTER TABLE keys ADD COLUMN grants_until TEXT;

    -- The grants each phone holds: one row per key and chunk of at most 8 machines.
    CREATE TABLE grants (
        phone_id     TEXT NOT NULL REFERENCES phones(id),
        key_id       TEXT NOT NULL REFERENCES keys(id),
        chunk        INTEGER NOT NULL,
        serial       INTEGER NOT NULL,
        machine_ids  TEXT NOT NULL,
        valid_from   TEXT NOT NULL,
        valid_to     TEXT NOT NULL,
        issued_at    TEXT NOT NULL,
        renew_after  TEXT NOT NULL,
        bytes        BLOB NOT NULL,
        seq          INTEGER NOT NULL,
        PRIMARY KEY (phone_id, key_id, chunk)
    ) WITHOUT ROWID;
    CREATE INDEX grants_phone_seq ON grants(phone_id, seq);
    CREATE INDEX grants_phone_renew ON grants(phone_id, renew_after);

    -- What each machine must refuse, kept until every grant it refuses has expired.
    CREATE TABLE revocation_entries (
        machine_id    TEXT NOT NULL REFERENCES machines(id),
        key_id        TEXT NOT NULL,
        min_serial    INTEGER NOT NULL,
        needed_until  TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (machine_id, key_id)
    ) WITHOUT ROWID;

    -- The latest signed list of each machine.
    CREATE TABLE revocation_lists (
        machine_id  TEXT PRIMARY KEY REFERENCES machines(id),
        sequence    INTEGER NOT NULL,
        issued_at   TEXT NOT NULL,
        bytes       BLOB NOT NULL,
        seq         INTEGER NOT NULL
    );
    CREATE INDEX revocation_lists_seq ON revocation_lists(seq);

    -- Usage events uploaded by phones; the id is the phone's idempotency key.
    -- organization_id is the machine's organization when the operator belongs to it.
    CREATE TABLE usage_events (
        phone_id         TEXT NOT NULL REFERENCES phones(id),
        id               TEXT NOT NULL,
        operator_id      TEXT NOT NULL,
        organization_id  TEXT,
        kind             TEXT NOT NULL,
        key_id           TEXT,
        machine_id       TEXT NOT NULL,
        at               TEXT NOT NULL,
        outcome          TEXT NOT NULL,
        usage_session    INTEGER,
        ended_at         TEXT,
        received_at      TEXT NOT NULL,
        PRIMARY KEY (phone_id, id)
    );
    CREATE INDEX usage_events_organization ON usage_events(organization_id, at);
    "#,
    // 3: usage sessions machines report themselves (POST /machine/v1/usage).
    r#"
    -- One row per machine and usage-session counter; organization_id is the machine's
    -- when the session arrived, so the history outlives the machine.
    CREATE TABLE machine_usage_sessions (
        machine_id       TEXT NOT NULL,
        usage_session    INTEGER NOT NULL,
        organization_id  TEXT NOT NULL,
        key_id           TEXT NOT NULL,
        operator_id      TEXT,
        started_at       TEXT NOT NULL,
        ended_at         TEXT,
        ended_by         TEXT NOT NULL,
        received_at      TEXT NOT NULL,
        PRIMARY KEY (machine_id, usage_session)
    ) WITHOUT ROWID;
    CREATE INDEX machine_usage_sessions_organization ON machine_usage_sessions(organization_id, started_at);

    -- Nonces of machine uploads, kept while an upload carrying them could still be accepted.
    CREATE TABLE machine_nonces (
        machine_id  TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        expires_at  TEXT NOT NULL,
        PRIMARY KEY (machine_id, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX machine_nonces_expiry ON machine_nonces(expires_at);
    "#,
    // 4: Rolling PIN and Static PIN keys, and per-machine keypad tables.
    r#"
    -- Rolling PIN keys: the keypad slot (the same on every machine of the key) and how
    -- codes are made. Not secret.
    ALTER TABLE keys ADD COLUMN pin_slot INTEGER;
    ALTER TABLE keys ADD COLUMN pin_algorithm TEXT;
    ALTER TABLE keys ADD COLUMN pin_digits INTEGER;
    ALTER TABLE keys ADD COLUMN pin_period_s INTEGER;
    -- Secrets sealed with AES-256-GCM under the secrets key file (associated data: the
    -- key id): version byte, nonce, ciphertext, tag. Never stored in the clear.
    ALTER TABLE keys ADD COLUMN pin_seed_sealed BLOB;
    ALTER TABLE keys ADD COLUMN static_pin_sealed BLOB;
    -- HMAC-SHA256 of the Static PIN under a key derived from the secrets key: lets the
    -- database check that a PIN is unique on a machine without holding it.
    ALTER TABLE keys ADD COLUMN static_pin_tag BLOB;
    -- The latest valid_to any keypad table carried for the key: how long a revocation list
    -- must keep refusing it.
    ALTER TABLE keys ADD COLUMN keypad_until TEXT;
    UPDATE keys SET keypad_until = valid_to WHERE access_type <> 'digital-key';

    -- The version of the machine's keypad table: the change sequence value of the latest
    -- change to any of its keypad entries (or of the machine's creation).
    ALTER TABLE machines ADD COLUMN keypad_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE machines SET keypad_seq = max(seq, coalesce((
        SELECT max(k.seq) FROM keys k JOIN key_machines km ON km.key_id = k.id
        WHERE km.machine_id = machines.id), 0));
    "#,
    // 5: invite landing pages show the short code to type.
    r#"
    -- The invite's short code sealed with AES-256-GCM under the secrets key file
    -- (associated data: opkey-invite-code-v1 and the invite id), so the page a link opens
    -- in a browser can show it. Never stored in the clear; NULL for invites issued before.
    ALTER TABLE invites ADD COLUMN code_sealed BLOB;
    "#,
];

/// Brings the schema up to date.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }
}
