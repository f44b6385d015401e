//! Fuzz target: BLE frame reassembly (`opkey_protocol::ble::Reassembler`, PROTOCOL.md 2.5).
//!
//! The input is a stream of length-prefixed fragments (the first byte picks the ATT MTU
//! for the re-fragmenting check). Invariants: a completed message is exactly the payload
//! bytes of the fragments accepted since the receiver was idle, never longer than 1024
//! bytes nor than what was fed; after an error the receiver holds nothing; a completed
//! message cut again at the chosen MTU fits that MTU and glues back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::Chunks;
use opkey_protocol::ble::frame::{MAX_FRAGMENT_LEN, MIN_ATT_MTU};
use opkey_protocol::ble::{MAX_MESSAGE_LEN, Reassembler, fragment};

const FIRST: u8 = 0x80;

fuzz_target!(|data: &[u8]| {
    let Some((&mtu_byte, stream)) = data.split_first() else {
        return;
    };
    let att_mtu = MIN_ATT_MTU + u16::from(mtu_byte) * 2;
    let capacity = (usize::from(att_mtu) - 3).min(MAX_FRAGMENT_LEN);

    let mut receiver = Reassembler::new();
    // The payload bytes of the fragments accepted since the receiver was last idle.
    let mut fed: Vec<u8> = Vec::new();
    for piece in Chunks::new(stream) {
        let was_receiving = receiver.is_receiving();
        match receiver.push(piece) {
            Err(_) => {
                assert!(!receiver.is_receiving(), "an error leaves the receiver idle");
                fed.clear();
            }
            Ok(outcome) => {
                let header = piece[0];
                let payload = if header & FIRST != 0 {
                    assert!(!was_receiving, "a first fragment accepted inside a message");
                    &piece[3..]
                } else {
                    assert!(was_receiving, "a continuation accepted with no message started");
                    &piece[1..]
                };
                fed.extend_from_slice(payload);
                match outcome {
                    None => assert!(receiver.is_receiving()),
                    Some(message) => {
                        assert!(!receiver.is_receiving());
                        assert!(message.len() <= MAX_MESSAGE_LEN);
                        assert_eq!(message, fed, "the message is exactly the bytes fed");
                        fed.clear();
                        let fragments = fragment(&message, att_mtu).expect("a received message can be sent");
                        assert!(fragments.iter().all(|f| !f.is_empty() && f.len() <= capacity));
                        let mut again = Reassembler::new();
                        let mut glued = None;
                        for f in &fragments {
                            assert!(glued.is_none(), "a message completed before its last fragment");
                            glued = again.push(f).expect("our own fragments reassemble");
                        }
                        assert_eq!(glued.as_deref(), Some(&message[..]));
                    }
                }
            }
        }
        assert!(fed.len() <= MAX_MESSAGE_LEN);
    }

    // The sender side: any message up to the limit round-trips at this MTU.
    let message = &stream[..stream.len().min(MAX_MESSAGE_LEN)];
    let fragments = fragment(message, att_mtu).expect("a message within the limit can be sent");
    let mut receiver = Reassembler::new();
    let mut glued = None;
    for f in &fragments {
        assert!(f.len() <= capacity);
        glued = receiver.push(f).expect("our own fragments reassemble");
    }
    assert_eq!(glued.as_deref(), Some(message));
});
