//! One machine's keypad table: its live Rolling PIN keys with seeds, Static PIN keys with
//! PINs and card keys, each with its holder (key, operator, serial = the key's version,
//! window). `version` is the machine's `keypad_seq`, raised by every change to one of
//! its keypad entries (create, edit, revoke, delete).

use super::SecretsKey;
use crate::db::{keys, machines};
use crate::error::ApiError;
use opkey_protocol::api::{KeypadCard, KeypadHolder, KeypadRollingPin, KeypadStaticPin, KeypadTable};
use opkey_protocol::ble::revocation::REVOKED_ENTIRELY;
use opkey_protocol::encoding::b64;
use opkey_protocol::{AccessType, Machine};
use rusqlite::Connection;
use time::OffsetDateTime;

/// The machine's keypad table at `now`. Secret: hand it only to the machine.
pub fn build(
    conn: &Connection,
    secrets: &SecretsKey,
    machine: &Machine,
    now: OffsetDateTime,
) -> Result<KeypadTable, ApiError> {
    let version = u64::try_from(machines::keypad_seq(conn, &machine.id)?).unwrap_or(0);
    let mut table = KeypadTable {
        machine_id: machine.id.clone(),
        version,
        rolling_pins: Vec::new(),
        static_pins: Vec::new(),
        cards: Vec::new(),
    };
    for (key, sealed) in keys::on_machine_keypad(conn, &machine.id, now)? {
        let Some(serial) = u32::try_from(key.version).ok().filter(|s| *s != REVOKED_ENTIRELY) else {
            continue;
        };
        let holder = KeypadHolder {
            key_id: key.id.clone(),
            operator_id: key.operator_id.clone(),
            serial,
            valid_from: key.validity.valid_from,
            valid_to: key.validity.valid_to,
        };
        match key.access_type {
            AccessType::RollingPin => {
                // A key created before seeds were kept has none: nothing to check.
                if let (Some(pin), Some(seed)) = (key.rolling_pin, sealed.seed) {
                    let seed = secrets.open(&key.id, &seed)?;
                    table.rolling_pins.push(KeypadRollingPin {
                        holder,
                        pin,
                        seed: b64(&seed),
                    });
                }
            }
            AccessType::StaticPin => {
                if let Some(sealed) = sealed.static_pin {
                    let pin = secrets.open(&key.id, &sealed)?;
                    table.static_pins.push(KeypadStaticPin {
                        holder,
                        static_pin: String::from_utf8_lossy(&pin).into_owned(),
                    });
                }
            }
            access_type if access_type.is_card() => {
                if let Some(card_id) = key.card_id {
                    table.cards.push(KeypadCard {
                        holder,
                        access_type,
                        card_id,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(table)
}
