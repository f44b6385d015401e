//! Fuzz target: every BLE message decoder (`opkey_protocol::ble::messages`, PROTOCOL.md
//! 2.6): Hello, HelloRequest, Request, the Request and Result plaintexts, Result and Error.
//!
//! Every decoder sees the whole input. Invariants: what decodes encodes back to exactly
//! the input (one encoding per value, so nothing can be smuggled in a second form); a
//! decoded message has the type `message_type` reports; a full-grant credential holds a
//! grant that decodes on its own; an included revocation list is never empty; every
//! error maps to a reason code and displays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_protocol::ble::messages::{
    ErrorMessage, Hello, HelloRequest, Request, RequestPlaintext, ResultPlaintext, decode_result,
    encode_result, message_type,
};
use opkey_protocol::ble::{Credential, DecodeError, Grant, MessageType};

fn check_error(e: DecodeError) {
    let _ = e.reason();
    assert!(!e.to_string().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let kind = message_type(data);
    if let Err(e) = kind {
        check_error(e);
    }

    match HelloRequest::decode(data) {
        Ok(m) => {
            assert_eq!(m.encode(), data);
            assert_eq!(kind, Ok(MessageType::HelloRequest));
        }
        Err(e) => check_error(e),
    }
    match Hello::decode(data) {
        Ok(hello) => {
            assert_eq!(hello.encode().expect("a decoded Hello encodes"), data);
            assert_eq!(kind, Ok(MessageType::Hello));
            assert!(!hello.machine_id.is_empty() && hello.machine_id.len() <= 64);
            assert!(hello.expires_at() >= hello.machine_time);
            let signed = hello.signed_message().expect("a decoded Hello has a signed form");
            assert!(signed.ends_with(&data[2..data.len() - 64]));
        }
        Err(e) => check_error(e),
    }
    match Request::decode(data) {
        Ok(request) => {
            assert_eq!(request.encode(), data);
            assert_eq!(kind, Ok(MessageType::Request));
            assert_eq!(request.phone_ephemeral_public_key[0], 0x04);
        }
        Err(e) => check_error(e),
    }
    match decode_result(data) {
        Ok(ciphertext) => {
            assert_eq!(encode_result(ciphertext), data);
            assert_eq!(kind, Ok(MessageType::Result));
        }
        Err(e) => check_error(e),
    }
    match ErrorMessage::decode(data) {
        Ok(m) => {
            assert_eq!(m.encode(), data);
            assert_eq!(kind, Ok(MessageType::Error));
        }
        Err(e) => check_error(e),
    }
    match ResultPlaintext::decode(data) {
        Ok(result) => assert_eq!(result.encode(), data),
        Err(e) => check_error(e),
    }
    match RequestPlaintext::decode(data) {
        Ok(plain) => {
            assert_eq!(plain.encode().expect("a decoded request encodes"), data);
            match &plain.credential {
                Credential::Cached { key_id } => assert!(!key_id.is_empty() && key_id.len() <= 64),
                Credential::Full { grant_bytes } => {
                    Grant::decode(grant_bytes).expect("the grant in a request decodes on its own");
                }
            }
            assert!(plain.revocations.as_ref().is_none_or(|l| !l.is_empty()));
            // Debug never shows the grant or list bytes, only their sizes.
            let _ = format!("{plain:?}");
        }
        Err(e) => check_error(e),
    }
});
