//! The dev SMS gateway's outbox: every message it "sent", newest last.

use super::{Ts, parsed, ts};
use opkey_protocol::api::SmsMessage;
use rusqlite::{Connection, params};

pub fn insert(conn: &Connection, message: &SmsMessage) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO sms_outbox (id, recipient, body, sent_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            message.id,
            message.recipient.as_str(),
            message.body,
            Ts(message.sent_at)
        ],
    )?;
    Ok(())
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<SmsMessage>> {
    conn.prepare("SELECT id, recipient, body, sent_at FROM sms_outbox ORDER BY rowid")?
        .query_map([], |r| {
            Ok(SmsMessage {
                id: r.get(0)?,
                recipient: parsed(r, 1)?,
                body: r.get(2)?,
                sent_at: ts(r, 3)?,
            })
        })?
        .collect()
}
