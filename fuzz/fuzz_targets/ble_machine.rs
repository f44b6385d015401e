//! Fuzz target: a machine (`opkey_protocol::ble::MachineVerifier`, PROTOCOL.md 2.7) fed
//! messages from a phone it cannot trust, over a reassembling link.
//!
//! The input is a stream of length-prefixed pieces, each a control byte then a fragment:
//! an odd control byte makes the machine send a fresh Hello (a live challenge) first, and
//! its high nibble moves the machine's clock on by that many seconds. Invariants: the machine never unlocks or locks (no
//! fuzzer can hold an issuer-signed grant and its phone key), every reply is an Error
//! message or an encrypted Result (an Error carrying the same reason), and no message or
//! frame error leaves a challenge behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::Chunks;
use opkey_fuzz::keys::keys;
use opkey_protocol::ble::messages::{ErrorMessage, decode_result};
use opkey_protocol::ble::{Decision, MachineVerifier, Reassembler};
use ring::rand::SystemRandom;
use std::sync::{Mutex, OnceLock};

const START: u64 = 1_700_000_000;

fn machine() -> &'static Mutex<MachineVerifier> {
    static MACHINE: OnceLock<Mutex<MachineVerifier>> = OnceLock::new();
    MACHINE.get_or_init(|| Mutex::new(keys().machine()))
}

fuzz_target!(|data: &[u8]| {
    let mut machine = machine().lock().unwrap_or_else(|e| e.into_inner());
    // Every input starts from the same fresh machine, so a crash reproduces alone.
    if machine.state().hello_counter > 0 || machine.challenge_outstanding() {
        *machine = keys().machine();
    }
    let rng = SystemRandom::new();
    let mut link = Reassembler::new();
    let mut now = START;
    for piece in Chunks::new(data) {
        let Some((&control, fragment)) = piece.split_first() else {
            continue;
        };
        now += u64::from(control >> 4);
        if control & 1 == 1 {
            machine.hello(now, &rng).expect("the machine signs a Hello");
            assert!(machine.challenge_outstanding());
        }
        let message = match link.push(fragment) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(error) => {
                let outcome = machine.frame_error(error);
                assert!(matches!(outcome.decision, Decision::Denied(_)));
                assert!(!machine.challenge_outstanding());
                continue;
            }
        };
        let outcome = machine.handle(&message, now);
        match outcome.decision {
            Decision::Unlocked { .. } | Decision::Locked { .. } => {
                panic!("the machine obeyed a fuzzed message: {:?}", outcome.decision)
            }
            Decision::NeedsHello => assert!(outcome.reply.is_empty()),
            Decision::Denied(reason) => {
                if let Ok(error) = ErrorMessage::decode(&outcome.reply) {
                    assert_eq!(error.code, reason);
                } else {
                    decode_result(&outcome.reply).expect("a refusal is an Error or a Result");
                }
            }
        }
        assert!(
            !machine.challenge_outstanding(),
            "a message left the challenge alive"
        );
    }
});
