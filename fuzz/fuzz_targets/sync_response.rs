//! Fuzz target: decoding the backend's sync page (`GET /v1/sync`,
//! `opkey_protocol::api::SyncResponse`) and error bodies, as the phone does; and the
//! grants and revocation lists a page carries (base64url of the BLE encodings).
//!
//! Invariants: a page that decodes serialises and decodes back to the same value; so does
//! an error body; a carried grant or list that decodes re-encodes to its own bytes. (The
//! phone's folding of pages into its store is private to opkey-core; the end-to-end sync
//! tests cover it.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_protocol::api::{ErrorBody, SyncResponse};
use opkey_protocol::ble::{Grant, RevocationList};
use opkey_protocol::encoding::unb64;

fuzz_target!(|data: &[u8]| {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(data) {
        let text = serde_json::to_vec(&error).expect("an error body serialises");
        assert_eq!(serde_json::from_slice::<ErrorBody>(&text).ok(), Some(error));
    }
    let Ok(page) = serde_json::from_slice::<SyncResponse>(data) else {
        return;
    };
    let text = serde_json::to_vec(&page).expect("a decoded page serialises");
    let again: SyncResponse = serde_json::from_slice(&text).expect("a serialised page decodes");
    assert_eq!(again, page);

    for record in &page.grants {
        if let Some(grant) = unb64(&record.grant).and_then(|b| Grant::decode(&b).ok()) {
            let body = grant.body().encode().expect("a decoded grant body encodes");
            assert!(grant.as_bytes().starts_with(&body));
        }
    }
    for record in &page.revocations {
        if let Some(list) = unb64(&record.list).and_then(|b| RevocationList::decode(&b).ok()) {
            let body = list.body().encode().expect("a decoded list body encodes");
            assert!(list.as_bytes().starts_with(&body));
        }
    }
    // Debug hides PIN secrets: it reads the same whatever the secret's value.
    for secret in &page.pin_secrets {
        let mut other = secret.clone();
        other.seed = other.seed.map(|s| format!("{s}x"));
        other.static_pin = other.static_pin.map(|s| format!("{s}x"));
        assert_eq!(
            format!("{secret:?}"),
            format!("{other:?}"),
            "a PIN secret in Debug output"
        );
    }
});
