//! # Rolling PIN, Static PIN and keypad tables (PROTOCOL.md Part 3)
//!
//! - [`secrets`]: the secrets key that seals Rolling PIN seeds and Static PINs at rest;
//! - [`table`]: what one machine's keypad and card reader check offline;
//! - here: the per-device rules of keypad keys. A Rolling PIN key takes the lowest keypad
//!   slot (1 to 495) free on every one of its machines, and keeps it; a Static PIN is
//!   unique among the live Static PIN keys of each machine. A key holds its slot or PIN
//!   while it is live: not deleted, not revoked and not yet expired.
//!
//! Never logs or puts in an error a seed or a PIN.

pub mod secrets;
pub mod table;

pub use secrets::{SECRETS_KEY_SUFFIX, SecretsKey, SecretsKeyError};

use crate::db::keys;
use crate::error::ApiError;
use opkey_protocol::Machine;
use opkey_protocol::pin::{KeypadSlot, MAX_SLOT};
use ring::rand::SecureRandom;
use rusqlite::Connection;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Digits of a Static PIN the backend generates.
pub const GENERATED_STATIC_PIN_DIGITS: usize = 6;
/// How many generated PINs to try before giving up (each one is free with a chance of at
/// least 1 − 495/10⁶ on one machine).
const GENERATE_ATTEMPTS: usize = 64;
/// Machines named in an error before "and N more".
const NAMED_MACHINES: usize = 5;

fn describe(machine: &Machine) -> String {
    format!("'{}' ({})", machine.name, machine.id)
}

/// The lowest keypad slot free on every one of `machines` at `now`.
pub fn allocate_slot(
    conn: &Connection,
    machines: &[Machine],
    now: OffsetDateTime,
) -> Result<KeypadSlot, ApiError> {
    let mut taken = vec![false; usize::from(MAX_SLOT) + 1];
    taken[0] = true;
    for machine in machines {
        let mut here = vec![false; usize::from(MAX_SLOT) + 1];
        for slot in keys::held_slots(conn, &machine.id, now, None)? {
            if let Some(flag) = here.get_mut(usize::from(slot)) {
                *flag = true;
            }
        }
        if here.iter().skip(1).all(|held| *held) {
            return Err(ApiError::KeypadSlotsFull {
                machine_id: machine.id.clone(),
                machine_name: machine.name.clone(),
            });
        }
        for (all, held) in taken.iter_mut().zip(here) {
            *all |= held;
        }
    }
    match taken.iter().position(|held| !held) {
        Some(free) => KeypadSlot::new(free as u16)
            .map_err(|e| ApiError::Internal(format!("slot allocation went out of range: {e}"))),
        None => {
            let mut named: Vec<String> = machines.iter().take(NAMED_MACHINES).map(describe).collect();
            if machines.len() > NAMED_MACHINES {
                named.push(format!("and {} more", machines.len() - NAMED_MACHINES));
            }
            Err(ApiError::NoCommonKeypadSlot {
                machines: named.join(", "),
            })
        }
    }
}

/// Refuses to bring a Rolling PIN key back to life (a later end date for an expired key)
/// when another live key took its slot on one of its machines meanwhile.
pub fn check_slot_kept(
    conn: &Connection,
    key_id: &str,
    slot: KeypadSlot,
    machines: &[Machine],
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    for machine in machines {
        if let Some(holder) = keys::slot_holder(conn, &machine.id, slot.get(), now, key_id)? {
            return Err(ApiError::Conflict(format!(
                "keypad slot {slot} of this key is now held on machine {} by Rolling PIN key {holder}; \
                 create a new key instead of extending this one",
                describe(machine)
            )));
        }
    }
    Ok(())
}

/// The live Static PIN key with this PIN (by its tag) on one of `machines`, as an error.
pub fn check_static_pin_unique(
    conn: &Connection,
    tag: &[u8],
    machines: &[Machine],
    now: OffsetDateTime,
    except: Option<&str>,
) -> Result<(), ApiError> {
    match static_pin_clash(conn, tag, machines, now, except)? {
        None => Ok(()),
        Some((machine, holder)) => Err(ApiError::Conflict(format!(
            "this Static PIN is already used on machine {} by key {holder}; choose another PIN, \
             or leave static_pin out to have one generated",
            describe(machine)
        ))),
    }
}

fn static_pin_clash<'m>(
    conn: &Connection,
    tag: &[u8],
    machines: &'m [Machine],
    now: OffsetDateTime,
    except: Option<&str>,
) -> Result<Option<(&'m Machine, String)>, ApiError> {
    for machine in machines {
        if let Some(holder) = keys::static_pin_holder(conn, &machine.id, tag, now, except)? {
            return Ok(Some((machine, holder)));
        }
    }
    Ok(None)
}

/// A random Static PIN of [`GENERATED_STATIC_PIN_DIGITS`] digits that no live Static PIN
/// key on `machines` has; `tag` gives a PIN's tag.
pub fn generate_static_pin(
    conn: &Connection,
    rng: &dyn SecureRandom,
    tag: impl Fn(&str) -> Vec<u8>,
    machines: &[Machine],
    now: OffsetDateTime,
) -> Result<Zeroizing<String>, ApiError> {
    for _ in 0..GENERATE_ATTEMPTS {
        let pin = random_digits(rng, GENERATED_STATIC_PIN_DIGITS)?;
        if static_pin_clash(conn, &tag(&pin), machines, now, None)?.is_none() {
            return Ok(pin);
        }
    }
    Err(ApiError::Internal(format!(
        "no free Static PIN found in {GENERATE_ATTEMPTS} random tries"
    )))
}

/// `digits` uniformly random decimal digits.
fn random_digits(rng: &dyn SecureRandom, digits: usize) -> Result<Zeroizing<String>, ApiError> {
    let mut pin = Zeroizing::new(String::with_capacity(digits));
    while pin.len() < digits {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte)?;
        // 250 = 25 · 10: rejecting 250..=255 keeps every digit equally likely.
        if byte[0] < 250 {
            pin.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn generated_pins_are_digits_of_the_right_length_and_vary() {
        let rng = SystemRandom::new();
        let pins: std::collections::HashSet<String> = (0..50)
            .map(|_| random_digits(&rng, 6).unwrap().to_string())
            .collect();
        assert!(pins.len() > 45);
        for pin in &pins {
            assert_eq!(pin.len(), 6);
            assert!(opkey_protocol::pin::validate_static_pin(pin).is_ok());
        }
    }
}
