//! Fuzz target: the revocation list decoder (`opkey_protocol::ble::RevocationList`,
//! PROTOCOL.md 2.3) and a machine applying a list from any courier.
//!
//! Invariants: a list that decodes is its body's encoding followed by a 64-byte
//! signature, and never verifies under an issuer key the input could not know; a machine
//! refuses every fuzzed list and its state stays untouched; the decoded body signed by the
//! machine's issuer is kept exactly when it is for this machine and newer than the list
//! held, and then the machine refuses what it lists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::keys::{MACHINE_ID, keys};
use opkey_protocol::ble::revocation::REVOKED_ENTIRELY;
use opkey_protocol::ble::{MachineVerifier, RevocationError, RevocationList};
use std::sync::Mutex;

fn machine() -> &'static Mutex<MachineVerifier> {
    static MACHINE: std::sync::OnceLock<Mutex<MachineVerifier>> = std::sync::OnceLock::new();
    MACHINE.get_or_init(|| Mutex::new(keys().machine()))
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let mut machine = machine().lock().unwrap_or_else(|e| e.into_inner());
    let before = machine.state().clone();
    assert!(
        machine.apply_revocations(data).is_err(),
        "a machine kept a fuzzed list"
    );
    assert_eq!(
        machine.state(),
        &before,
        "a refused list changed the machine's state"
    );

    let list = match RevocationList::decode(data) {
        Ok(list) => list,
        Err(e) => {
            let _ = e.reason();
            return;
        }
    };
    assert_eq!(list.as_bytes(), data);
    let body = list.body().clone();
    let encoded = body.encode().expect("a decoded body encodes");
    assert_eq!(encoded.len() + 64, data.len());
    assert_eq!(&data[..encoded.len()], &encoded[..], "one encoding per list body");
    assert_eq!(
        list.verify(keys.issuer_public_key()),
        Err(RevocationError::BadSignature)
    );
    for entry in &body.entries {
        if entry.min_serial > 0 {
            assert!(list.refuses(&entry.key_id, entry.min_serial - 1));
        }
        if entry.min_serial == REVOKED_ENTIRELY {
            assert!(list.revokes_entirely(&entry.key_id) && list.refuses(&entry.key_id, u32::MAX));
        }
    }

    let signed = keys
        .sign_revocations(body.clone())
        .expect("a decoded body can be signed");
    let held = machine.state().revocation_sequence;
    let update = machine
        .apply_revocations(signed.as_bytes())
        .expect("a signed list is accepted");
    let for_us = body.machine_id == MACHINE_ID && body.sequence > held;
    assert_eq!(update.kept, for_us);
    if for_us {
        assert_eq!(machine.state().revocation_sequence, body.sequence);
        assert_eq!(machine.state().revocations.as_deref(), Some(signed.as_bytes()));
    }
    if update.persist {
        // Start every input from the same fresh machine, so a crash reproduces alone.
        *machine = keys.machine();
    }
});
