//! Fuzz target: the Digital Key grant decoder (`opkey_protocol::ble::Grant`, PROTOCOL.md
//! 2.2).
//!
//! Invariants: a grant that decodes is its body's encoding followed by a 64-byte
//! signature, names 1–255 machines, and never verifies under an issuer key the input
//! could not know (no forgery); the decoded body signed by that issuer decodes back to the
//! same body and verifies; a phone-side unlock built on the forged grant refuses to start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::keys::keys;
use opkey_protocol::ble::{Grant, GrantError};

fuzz_target!(|data: &[u8]| {
    let grant = match Grant::decode(data) {
        Ok(grant) => grant,
        Err(e) => {
            let _ = e.reason();
            return;
        }
    };
    assert_eq!(grant.as_bytes(), data);
    let body = grant.body().clone();
    let encoded = body.encode().expect("a decoded body encodes");
    assert_eq!(encoded.len() + 64, data.len());
    assert_eq!(
        &data[..encoded.len()],
        &encoded[..],
        "one encoding per grant body"
    );
    assert!(!body.machine_ids.is_empty());
    assert!(
        body.machine_ids
            .iter()
            .all(|m| !m.is_empty() && m.len() <= 64 && grant.covers(m))
    );

    // The time window is half-open: [valid_from, valid_to).
    match grant.check_time(body.valid_from) {
        Ok(()) => assert!(body.valid_from < body.valid_to),
        Err(e) => assert!(e == GrantError::Expired && body.valid_from >= body.valid_to),
    }
    if body.valid_from > 0 {
        assert_eq!(
            grant.check_time(body.valid_from - 1),
            Err(GrantError::NotYetValid)
        );
    }
    assert_eq!(
        grant.check_time(body.valid_to.max(body.valid_from)),
        Err(GrantError::Expired)
    );

    let keys = keys();
    assert_eq!(
        grant.verify(keys.issuer_public_key()),
        Err(GrantError::BadSignature),
        "a grant from the fuzzer verified under a key it never saw"
    );
    let signed = keys
        .sign_grant(body.clone())
        .expect("a decoded body can be signed");
    let again = Grant::decode(signed.as_bytes()).expect("a signed grant decodes");
    assert_eq!(again.body(), &body);
    assert_eq!(again.verify(keys.issuer_public_key()), Ok(()));
    // Debug shows no key material.
    let debug = format!("{grant:?}");
    assert!(!debug.contains("phone_public_key"));
});
