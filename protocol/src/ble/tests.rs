//! The unlock protocol as stories: both ends wired together in memory, through the
//! framing, with every attack of the security model. No radio, no clock, no sleeps.

use super::crypto::{REQUEST_CONTEXT, SessionKeys, derive_keys, ephemeral_key, request_transcript, seal};
use super::messages::{
    ErrorMessage, Hello, Request, RequestPlaintext, ResultPlaintext, decode_result, message_type,
};
use super::revocation::REVOKED_ENTIRELY;
use super::test_support::{Issuer, PhoneKey, TestMachine, grant_body};
use super::*;
use proptest::prelude::*;
use ring::rand::SystemRandom;
use time::OffsetDateTime;

const T0: u64 = 1_760_000_000;
const DAY: u64 = 86_400;
const MACHINE: &str = "mch_aaaaaaaaaaaaaaaa";
const OTHER_MACHINE: &str = "mch_bbbbbbbbbbbbbbbb";
const KEY: &str = "key_aaaaaaaaaaaaaaaa";

fn at(unix: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix as i64).unwrap()
}

/// Fragments at `mtu` and reassembles, as the BLE link would.
fn carry(message: &[u8], mtu: u16) -> Vec<u8> {
    let mut receiver = Reassembler::new();
    let mut out = None;
    for f in fragment(message, mtu).unwrap() {
        assert!(out.is_none(), "message completed before its last fragment");
        out = receiver.push(&f).unwrap();
    }
    out.expect("the last fragment completes the message")
}

/// An issuer, one machine, one enrolled phone and its grant for the machine.
struct World {
    issuer: Issuer,
    machine: TestMachine,
    verifier: MachineVerifier,
    phone: PhoneKey,
    grant: Grant,
    /// The phone's (server-corrected) clock.
    phone_now: u64,
    rng: SystemRandom,
}

/// What one exchange produced on both ends.
#[derive(Debug)]
struct Exchange {
    phone: Result<UnlockOutcome, UnlockError>,
    machine: Outcome,
    request: Vec<u8>,
}

impl World {
    fn new() -> Self {
        let issuer = Issuer::new();
        let machine = TestMachine::new(MACHINE);
        let verifier = machine.verifier(&issuer);
        let phone = PhoneKey::new();
        let grant = issuer.grant(grant_body(KEY, &phone, &[MACHINE], T0 - 3600, T0 + 7 * DAY));
        Self {
            issuer,
            machine,
            verifier,
            phone,
            grant,
            phone_now: T0,
            rng: SystemRandom::new(),
        }
    }

    fn params(&self, command: Command, credential: Credential) -> PhoneUnlockParams {
        PhoneUnlockParams {
            machine_id: MACHINE.into(),
            machine_public_key: self.machine.public_key().to_vec(),
            command,
            credential,
            revocations: None,
        }
    }

    fn full(&self) -> Credential {
        Credential::Full {
            grant_bytes: self.grant.as_bytes().to_vec(),
        }
    }

    fn cached(&self) -> Credential {
        Credential::Cached { key_id: KEY.into() }
    }

    fn hello(&mut self, rtc: u64) -> Vec<u8> {
        let hello = self.verifier.hello(rtc, &self.rng).unwrap();
        assert!(
            hello.persist,
            "the hello counter must be persisted before sending"
        );
        hello.message
    }

    /// The phone's request for this Hello, signed by `signer`.
    fn request(&self, hello: &[u8], params: PhoneUnlockParams, signer: &PhoneKey) -> (PhoneUnlock, Vec<u8>) {
        let mut phone = PhoneUnlock::new(params, at(self.phone_now)).unwrap();
        let needed = phone.on_hello(hello, &self.rng).unwrap();
        let request = phone.on_signature(signer.sign(&needed.transcript)).unwrap();
        (phone, request)
    }

    /// A whole exchange through the framing at `mtu`, the machine's RTC reading `rtc`.
    fn exchange_at_mtu(&mut self, params: PhoneUnlockParams, rtc: u64, mtu: u16) -> Exchange {
        let hello = carry(&self.hello(rtc), mtu);
        let (mut phone, request) = self.request(&hello, params, &self.phone);
        let machine = self.verifier.handle(&carry(&request, mtu), rtc);
        let phone = phone.on_result(&carry(&machine.reply, mtu));
        Exchange {
            phone,
            machine,
            request,
        }
    }

    fn exchange(&mut self, params: PhoneUnlockParams, rtc: u64) -> Exchange {
        self.exchange_at_mtu(params, rtc, 185)
    }

    fn unlock(&mut self, credential: Credential, rtc: u64) -> Exchange {
        let params = self.params(Command::Unlock, credential);
        self.exchange(params, rtc)
    }
}

/// Builds a request by hand, as an attacker's own code would: nothing checked on the way.
fn forge(hello: &[u8], make: impl FnOnce(&[u8; 65]) -> RequestPlaintext) -> (Vec<u8>, SessionKeys) {
    let h = Hello::decode(hello).unwrap();
    let (private, public) = ephemeral_key(&SystemRandom::new()).unwrap();
    let keys = derive_keys(private, &h.machine_ephemeral_public_key, hello, &public).unwrap();
    let plaintext = make(&public).encode().unwrap();
    let request = Request {
        phone_ephemeral_public_key: public,
        ciphertext: seal(&keys.request, REQUEST_CONTEXT, &plaintext),
    };
    (request.encode(), keys)
}

/// A correctly signed plaintext for `grant_bytes`, by `signer`.
fn signed(hello: &[u8], eph: &[u8; 65], grant: &Grant, signer: &PhoneKey) -> RequestPlaintext {
    let transcript = request_transcript(hello, eph, Command::Unlock.code(), grant.key_id()).unwrap();
    RequestPlaintext {
        command: Command::Unlock,
        credential: Credential::Full {
            grant_bytes: grant.as_bytes().to_vec(),
        },
        revocations: None,
        signature: signer.sign(&transcript),
    }
}

fn denied(outcome: &Outcome) -> Option<ReasonCode> {
    match outcome.decision {
        Decision::Denied(reason) => Some(reason),
        _ => None,
    }
}

fn plain_error(reply: &[u8]) -> ReasonCode {
    ErrorMessage::decode(reply).unwrap().code
}

// ---------------------------------------------------------------------------------------
// Happy paths

#[test]
fn cold_unlock_warm_lock_and_warm_unlock_work_through_fragments_at_mtu_23_and_185() {
    for mtu in [23, 185] {
        let mut w = World::new();
        let cold = w.exchange_at_mtu(w.params(Command::Unlock, w.full()), T0, mtu);
        assert_eq!(
            cold.phone,
            Ok(UnlockOutcome::Unlocked {
                relock_after_s: 120,
                usage_session: 1
            })
        );
        assert_eq!(
            cold.machine.decision,
            Decision::Unlocked {
                key_id: KEY.into(),
                operator_id: "opr_aaaaaaaaaaaaaaaa".into(),
                personal: true,
                usage_session: 1,
                relock_after_s: 120,
            }
        );
        assert!(
            cold.machine.persist,
            "the cached grant and usage session must be persisted"
        );
        assert!(w.verifier.state().grant_cache.contains_key(KEY));

        let lock = w.exchange_at_mtu(w.params(Command::Lock, w.cached()), T0 + 60, mtu);
        assert_eq!(lock.phone, Ok(UnlockOutcome::Locked { usage_session: 2 }));
        assert!(matches!(
            lock.machine.decision,
            Decision::Locked { usage_session: 2, .. }
        ));

        let warm = w.exchange_at_mtu(w.params(Command::Unlock, w.cached()), T0 + 120, mtu);
        assert!(matches!(
            warm.phone,
            Ok(UnlockOutcome::Unlocked { usage_session: 3, .. })
        ));
        assert!(warm.request.len() < cold.request.len());
    }
}

#[test]
fn a_machine_restarted_from_its_persisted_state_still_knows_the_grant_and_never_reuses_a_counter() {
    let mut w = World::new();
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    let json = serde_json::to_string(w.verifier.state()).unwrap();
    let state: MachineState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, w.verifier.state());
    let counter = state.hello_counter;
    w.verifier = w.machine.verifier_with(&w.issuer, state);
    let warm = w.unlock(w.cached(), T0 + 5);
    assert!(matches!(
        warm.phone,
        Ok(UnlockOutcome::Unlocked { usage_session: 2, .. })
    ));
    assert_eq!(w.verifier.state().hello_counter, counter + 1);
}

#[test]
fn an_unknown_cached_key_gets_unknown_grant_and_the_full_grant_after_a_new_hello_works() {
    let mut w = World::new();
    let warm = w.unlock(w.cached(), T0);
    assert_eq!(warm.phone, Ok(UnlockOutcome::UnknownGrant));
    assert_eq!(denied(&warm.machine), Some(ReasonCode::UnknownGrant));

    // The phone asks for a fresh Hello on the same connection.
    let again = w.verifier.handle(&PhoneUnlock::hello_request(), T0 + 1);
    assert_eq!(again.decision, Decision::NeedsHello);
    assert!(again.reply.is_empty());
    let cold = w.unlock(w.full(), T0 + 1);
    assert!(matches!(cold.phone, Ok(UnlockOutcome::Unlocked { .. })));
}

#[test]
fn a_hello_request_replaces_the_outstanding_challenge() {
    let mut w = World::new();
    let first = w.hello(T0);
    let (_, request) = w.request(&first, w.params(Command::Unlock, w.full()), &w.phone);
    assert_eq!(
        w.verifier.handle(&PhoneUnlock::hello_request(), T0).decision,
        Decision::NeedsHello
    );
    assert!(!w.verifier.challenge_outstanding());
    let outcome = w.verifier.handle(&request, T0);
    assert_eq!(denied(&outcome), Some(ReasonCode::StaleChallenge));
}

// ---------------------------------------------------------------------------------------
// The challenge: fresh, single use, short-lived

#[test]
fn a_replayed_request_is_a_stale_challenge_and_the_relay_is_untouched() {
    let mut w = World::new();
    let first = w.unlock(w.full(), T0);
    assert!(matches!(first.machine.decision, Decision::Unlocked { .. }));

    let replay = w.verifier.handle(&first.request, T0 + 1);
    assert_eq!(replay.decision, Decision::Denied(ReasonCode::StaleChallenge));
    assert_eq!(plain_error(&replay.reply), ReasonCode::StaleChallenge);
    assert!(!replay.persist);

    // Replayed against a newer Hello it does not even decrypt.
    w.hello(T0 + 2);
    let replay = w.verifier.handle(&first.request, T0 + 2);
    assert_eq!(replay.decision, Decision::Denied(ReasonCode::BadCiphertext));
}

#[test]
fn a_request_after_the_hellos_lifetime_is_a_stale_challenge() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    assert_eq!(
        denied(&w.verifier.handle(&request, T0 + 10)),
        Some(ReasonCode::StaleChallenge)
    );

    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    assert!(matches!(
        w.verifier.handle(&request, T0 + 9).decision,
        Decision::Unlocked { .. }
    ));
}

#[test]
fn a_clock_set_back_between_hello_and_request_cannot_stretch_the_challenge() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    assert_eq!(
        denied(&w.verifier.handle(&request, T0 - 1)),
        Some(ReasonCode::StaleChallenge)
    );
}

#[test]
fn a_request_without_a_hello_is_a_stale_challenge() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    w.verifier.disconnected();
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::StaleChallenge)
    );
}

#[test]
fn the_first_message_consumes_the_hello_even_when_it_is_garbage() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let garbage = w.verifier.handle(&[1, 2, 0xde, 0xad], T0);
    assert_eq!(garbage.decision, Decision::Denied(ReasonCode::Malformed));
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::StaleChallenge)
    );
}

#[test]
fn the_hello_counter_rises_with_every_hello() {
    let mut w = World::new();
    let counters: Vec<u32> = (0..3)
        .map(|_| Hello::decode(&w.hello(T0)).unwrap().hello_counter)
        .collect();
    assert_eq!(counters, [1, 2, 3]);
    assert_eq!(w.verifier.state().hello_counter, 3);
}

// ---------------------------------------------------------------------------------------
// The machine proves itself first

#[test]
fn a_hello_signed_by_another_key_is_refused_before_the_phone_sends_anything() {
    let w = World::new();
    let impostor = TestMachine::new(MACHINE)
        .verifier(&w.issuer)
        .hello(T0, &w.rng)
        .unwrap();
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    assert_eq!(
        phone.on_hello(&impostor.message, &w.rng),
        Err(UnlockError::FakeMachine)
    );
    // Nothing can be produced for the impostor afterwards.
    assert_eq!(phone.on_signature([0; 64]), Err(UnlockError::OutOfTurn));
}

#[test]
fn a_hello_from_another_machine_is_refused_as_the_wrong_machine() {
    let w = World::new();
    let other = TestMachine::new(OTHER_MACHINE)
        .verifier(&w.issuer)
        .hello(T0, &w.rng)
        .unwrap();
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    assert_eq!(
        phone.on_hello(&other.message, &w.rng),
        Err(UnlockError::WrongMachine)
    );
}

#[test]
fn a_hello_with_an_edited_field_is_a_fake_machine() {
    let mut w = World::new();
    let mut hello = w.hello(T0);
    let lifetime = 2 + 21 + 65 + 8 + 1;
    hello[lifetime] = 0xff;
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    assert_eq!(phone.on_hello(&hello, &w.rng), Err(UnlockError::FakeMachine));
}

#[test]
fn a_tampered_result_is_refused_by_the_phone() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (mut phone, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let mut reply = w.verifier.handle(&request, T0).reply;
    let last = reply.len() - 1;
    reply[last] ^= 0x80;
    assert_eq!(phone.on_result(&reply), Err(UnlockError::BadResultCiphertext));
}

#[test]
fn a_result_from_another_exchange_is_refused_by_the_phone() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (mut phone, _) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let other = w.unlock(w.full(), T0 + 1);
    assert_eq!(
        phone.on_result(&other.machine.reply),
        Err(UnlockError::BadResultCiphertext)
    );
}

// ---------------------------------------------------------------------------------------
// The grant

#[test]
fn a_grant_for_another_machine_is_refused_as_the_wrong_machine() {
    let mut w = World::new();
    let elsewhere = w
        .issuer
        .grant(grant_body(KEY, &w.phone, &[OTHER_MACHINE], T0 - 60, T0 + DAY));
    // The phone refuses locally …
    let mut params = w.params(Command::Unlock, w.full());
    params.credential = Credential::Full {
        grant_bytes: elsewhere.as_bytes().to_vec(),
    };
    assert_eq!(
        PhoneUnlock::new(params, at(T0)).err(),
        Some(UnlockError::GrantUnusable(GrantError::WrongMachine))
    );
    // … and the machine refuses it from anyone who sends it anyway.
    let hello = w.hello(T0);
    let (request, _) = forge(&hello, |eph| signed(&hello, eph, &elsewhere, &w.phone));
    let outcome = w.verifier.handle(&request, T0);
    assert_eq!(denied(&outcome), Some(ReasonCode::WrongMachine));
    assert!(!w.verifier.state().grant_cache.contains_key(KEY));
}

#[test]
fn expired_and_not_yet_valid_grants_are_refused_by_the_machine_clock() {
    let mut w = World::new();
    let expired = w.unlock(w.full(), T0 + 7 * DAY);
    assert_eq!(expired.phone, Ok(UnlockOutcome::Denied(ReasonCode::Expired)));
    assert_eq!(denied(&expired.machine), Some(ReasonCode::Expired));

    let mut w = World::new();
    let mut body = grant_body(KEY, &w.phone, &[MACHINE], T0 + 3600, T0 + DAY);
    body.issued_at = T0 - 60;
    w.grant = w.issuer.grant(body);
    let phone_too_early = w.params(Command::Unlock, w.full());
    assert_eq!(
        PhoneUnlock::new(phone_too_early, at(T0)).err(),
        Some(UnlockError::GrantUnusable(GrantError::NotYetValid))
    );
    let hello = w.hello(T0);
    let grant = w.grant.clone();
    let (request, _) = forge(&hello, |eph| signed(&hello, eph, &grant, &w.phone));
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::NotYetValid)
    );
}

#[test]
fn a_forged_grant_signature_is_refused() {
    let mut w = World::new();
    let mut bytes = w.grant.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let outcome = w.unlock(Credential::Full { grant_bytes: bytes }, T0);
    assert_eq!(
        outcome.phone,
        Ok(UnlockOutcome::Denied(ReasonCode::BadGrantSignature))
    );
    assert!(w.verifier.state().grant_cache.is_empty());
}

#[test]
fn a_grant_signed_by_another_issuer_is_refused() {
    let mut w = World::new();
    w.grant = Issuer::new().grant(grant_body(KEY, &w.phone, &[MACHINE], T0 - 60, T0 + DAY));
    let outcome = w.unlock(w.full(), T0);
    assert_eq!(
        outcome.phone,
        Ok(UnlockOutcome::Denied(ReasonCode::BadGrantSignature))
    );
}

#[test]
fn a_stolen_grant_signed_by_another_phone_key_is_refused() {
    let mut w = World::new();
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    let thief = PhoneKey::new();

    // The thief's own phone app stops it with a full grant …
    let hello = w.hello(T0 + 1);
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    let needed = phone.on_hello(&hello, &w.rng).unwrap();
    assert_eq!(
        phone.on_signature(thief.sign(&needed.transcript)),
        Err(UnlockError::SignatureByAnotherKey)
    );

    // … and the machine stops it by key id or full grant.
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.cached()), &thief);
    let cached = w.verifier.handle(&request, T0 + 1);
    assert_eq!(denied(&cached), Some(ReasonCode::BadSignature));
    let hello = w.hello(T0 + 2);
    let grant = w.grant.clone();
    let (request, _) = forge(&hello, |eph| signed(&hello, eph, &grant, &thief));
    assert_eq!(
        denied(&w.verifier.handle(&request, T0 + 2)),
        Some(ReasonCode::BadSignature)
    );
}

#[test]
fn a_signature_for_another_command_is_refused() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let grant = w.grant.clone();
    let (request, _) = forge(&hello, |eph| {
        let mut plain = signed(&hello, eph, &grant, &w.phone);
        plain.command = Command::Lock;
        plain
    });
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::BadSignature)
    );
}

#[test]
fn a_tampered_request_ciphertext_is_refused_in_plaintext() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (mut phone, mut request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let middle = request.len() / 2 + 40;
    request[middle] ^= 0x01;
    let outcome = w.verifier.handle(&request, T0);
    assert_eq!(outcome.decision, Decision::Denied(ReasonCode::BadCiphertext));
    assert_eq!(plain_error(&outcome.reply), ReasonCode::BadCiphertext);
    assert_eq!(
        phone.on_result(&outcome.reply),
        Ok(UnlockOutcome::Denied(ReasonCode::BadCiphertext))
    );
}

#[test]
fn a_swapped_ephemeral_key_does_not_decrypt() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, mut request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let (_, other) = ephemeral_key(&w.rng).unwrap();
    request[2..67].copy_from_slice(&other);
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::BadCiphertext)
    );
}

#[test]
fn an_unknown_command_is_unsupported() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let grant = w.grant.clone();
    let phone = PhoneKey::new();
    let h = Hello::decode(&hello).unwrap();
    let (private, public) = ephemeral_key(&w.rng).unwrap();
    let keys = derive_keys(private, &h.machine_ephemeral_public_key, &hello, &public).unwrap();
    let mut plaintext = signed(&hello, &public, &grant, &phone).encode().unwrap();
    plaintext[0] = 9;
    let request = Request {
        phone_ephemeral_public_key: public,
        ciphertext: seal(&keys.request, REQUEST_CONTEXT, &plaintext),
    }
    .encode();
    let outcome = w.verifier.handle(&request, T0);
    assert_eq!(denied(&outcome), Some(ReasonCode::Unsupported));
    // Refusals after decryption are sealed, so the phone can tell them from a forgery.
    assert_eq!(message_type(&outcome.reply), Ok(MessageType::Result));
    let sealed = decode_result(&outcome.reply).unwrap();
    let opened = super::crypto::open(&keys.result, super::crypto::RESULT_CONTEXT, sealed).unwrap();
    assert_eq!(
        ResultPlaintext::decode(&opened).unwrap().status,
        Status::Refused(ReasonCode::Unsupported)
    );
}

// ---------------------------------------------------------------------------------------
// Revocation

fn entry(key_id: &str, min_serial: u32) -> Revocation {
    Revocation {
        key_id: key_id.into(),
        min_serial,
    }
}

#[test]
fn a_revoked_key_is_refused_by_an_offline_machine_the_phone_carries_the_news() {
    for min_serial in [2, REVOKED_ENTIRELY] {
        let mut w = World::new();
        let list = w
            .issuer
            .revocations(MACHINE, 1, T0 - 10, vec![entry(KEY, min_serial)]);
        let mut params = w.params(Command::Unlock, w.full());
        params.revocations = Some(list.as_bytes().to_vec());
        let outcome = w.exchange(params, T0);
        assert_eq!(outcome.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));
        assert!(outcome.machine.persist, "the carried list must be persisted");
        assert_eq!(w.verifier.state().revocation_sequence, 1);
        assert!(w.verifier.state().grant_cache.is_empty());
    }
}

#[test]
fn a_revoked_cached_grant_is_refused_and_forgotten() {
    let mut w = World::new();
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    let list = w
        .issuer
        .revocations(MACHINE, 1, T0, vec![entry(KEY, REVOKED_ENTIRELY)]);
    assert_eq!(
        w.verifier.apply_revocations(list.as_bytes()),
        Ok(RevocationUpdate {
            kept: true,
            persist: true
        })
    );
    let warm = w.unlock(w.cached(), T0 + 5);
    assert_eq!(warm.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));
    assert!(w.verifier.state().grant_cache.is_empty());
}

#[test]
fn after_an_edit_the_older_serial_is_refused_while_the_new_serial_works() {
    let mut w = World::new();
    let old = w.grant.clone();
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));

    // The admin edits the key: serial 2, and a list refusing serial 1.
    let mut body = grant_body(KEY, &w.phone, &[MACHINE], T0 - 3600, T0 + 3 * DAY);
    body.serial = 2;
    body.issued_at = T0 + 100;
    w.grant = w.issuer.grant(body);
    let list = w.issuer.revocations(MACHINE, 7, T0 + 100, vec![entry(KEY, 2)]);

    // Warm unlock: the machine learns the list, drops its serial-1 grant, asks for the new one.
    let mut params = w.params(Command::Unlock, w.cached());
    params.revocations = Some(list.as_bytes().to_vec());
    let warm = w.exchange(params, T0 + 200);
    assert_eq!(warm.phone, Ok(UnlockOutcome::UnknownGrant));
    assert_eq!(w.verifier.state().revocation_sequence, 7);

    let cold = w.unlock(w.full(), T0 + 201);
    assert!(matches!(cold.phone, Ok(UnlockOutcome::Unlocked { .. })));

    // Someone still holding serial 1 is refused.
    w.grant = old;
    let stale = w.unlock(w.full(), T0 + 202);
    assert_eq!(stale.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));
    // The newer cached grant was not replaced by the older one.
    let cached = Grant::decode(&w.verifier.state().grant_cache[KEY].grant).unwrap();
    assert_eq!(cached.body().serial, 2);
}

#[test]
fn a_revocation_list_with_a_lower_sequence_is_ignored_and_a_higher_one_kept() {
    let mut w = World::new();
    let v5 = w
        .issuer
        .revocations(MACHINE, 5, T0, vec![entry("key_x", REVOKED_ENTIRELY)]);
    let v4 = w.issuer.revocations(MACHINE, 4, T0, vec![]);
    let v6 = w.issuer.revocations(MACHINE, 6, T0, vec![]);
    assert!(w.verifier.apply_revocations(v5.as_bytes()).unwrap().kept);
    assert!(!w.verifier.apply_revocations(v4.as_bytes()).unwrap().kept);
    assert!(!w.verifier.apply_revocations(v5.as_bytes()).unwrap().kept);
    assert_eq!(w.verifier.state().revocations.as_deref(), Some(v5.as_bytes()));
    assert!(w.verifier.apply_revocations(v6.as_bytes()).unwrap().kept);
    assert_eq!(w.verifier.state().revocation_sequence, 6);

    // Carried by a phone, a lower one is ignored without failing the unlock.
    let mut params = w.params(Command::Unlock, w.full());
    params.revocations = Some(v4.as_bytes().to_vec());
    assert!(matches!(
        w.exchange(params, T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    assert_eq!(w.verifier.state().revocation_sequence, 6);
}

#[test]
fn a_list_for_another_machine_is_ignored() {
    let mut w = World::new();
    let elsewhere = w
        .issuer
        .revocations(OTHER_MACHINE, 9, T0, vec![entry(KEY, REVOKED_ENTIRELY)]);
    assert!(!w.verifier.apply_revocations(elsewhere.as_bytes()).unwrap().kept);
    assert_eq!(w.verifier.state().revocation_sequence, 0);
}

#[test]
fn a_revocation_list_with_a_bad_signature_is_refused() {
    let mut w = World::new();
    let forged = Issuer::new().revocations(MACHINE, 99, T0, vec![]);
    assert_eq!(
        w.verifier.apply_revocations(forged.as_bytes()),
        Err(RevocationListError::BadSignature)
    );
    let mut params = w.params(Command::Unlock, w.full());
    params.revocations = Some(forged.as_bytes().to_vec());
    let outcome = w.exchange(params, T0);
    assert_eq!(
        outcome.phone,
        Ok(UnlockOutcome::Denied(ReasonCode::BadRevocationList))
    );
    assert_eq!(w.verifier.state().revocation_sequence, 0);
}

#[test]
fn the_phone_carries_its_list_only_when_the_machines_is_older() {
    let mut w = World::new();
    let list = w.issuer.revocations(MACHINE, 3, T0, vec![entry("key_x", 4)]);
    let mut params = w.params(Command::Unlock, w.full());
    params.revocations = Some(list.as_bytes().to_vec());
    let first = w.exchange(params.clone(), T0);
    assert_eq!(w.verifier.state().revocation_sequence, 3);
    let second = w.exchange(params, T0 + 1);
    assert_eq!(first.request.len(), second.request.len() + list.as_bytes().len());
}

fn entries(m: usize) -> Vec<Revocation> {
    (0..m).map(|i| entry(&format!("key_{i:016}"), 2)).collect()
}

/// The request a phone builds for `credential` carrying a list of `m` entries.
fn request_with_list(w: &mut World, credential: Credential, m: usize) -> Vec<u8> {
    let list = w.issuer.revocations(MACHINE, 1, T0, entries(m));
    assert_eq!(list.as_bytes().len(), 96 + 25 * m);
    let mut params = w.params(Command::Unlock, credential);
    params.revocations = Some(list.into_bytes());
    let hello = w.hello(T0);
    w.request(&hello, params, &w.phone).1
}

#[test]
fn a_list_rides_along_up_to_the_documented_capacity_and_is_left_out_beyond_it() {
    let mut w = World::new();
    let (full, cached) = (w.full(), w.cached());
    assert_eq!(
        request_with_list(&mut w, full.clone(), 22).len(),
        359 + 96 + 25 * 22
    );
    assert_eq!(
        request_with_list(&mut w, full, 23).len(),
        359,
        "a list that does not fit stays home"
    );
    assert_eq!(
        request_with_list(&mut w, cached.clone(), 30).len(),
        169 + 96 + 25 * 30
    );
    assert_eq!(request_with_list(&mut w, cached, 31).len(), 169);

    let machines: Vec<String> = (0..8).map(|i| format!("mch_{i:016}")).collect();
    let mut names: Vec<&str> = machines.iter().map(String::as_str).collect();
    names[0] = MACHINE;
    w.grant = w
        .issuer
        .grant(grant_body(KEY, &w.phone, &names, T0 - 60, T0 + DAY));
    assert_eq!(w.grant.as_bytes().len(), 190 + 21 * 8);
    let full = w.full();
    let request = request_with_list(&mut w, full, 16);
    assert!(request.len() <= MAX_MESSAGE_LEN);
    assert_eq!(request.len(), 359 + 21 * 7 + 96 + 25 * 16);
    // The machine takes the list and the grant.
    let outcome = w.verifier.handle(&request, T0);
    assert!(matches!(outcome.decision, Decision::Unlocked { .. }));
    assert_eq!(w.verifier.state().revocation_sequence, 1);
    let full = w.full();
    let seventeen = request_with_list(&mut w, full, 17);
    assert_eq!(
        seventeen.len(),
        359 + 21 * 7,
        "17 entries do not fit beside 8 machines"
    );
}

// ---------------------------------------------------------------------------------------
// Time on the machine

#[test]
fn the_machine_clock_only_moves_forward_a_reset_rtc_learns_the_time_from_signed_data() {
    let mut w = World::new();
    // The RTC was reset to 0; a fresh grant's issued_at moves the floor.
    assert!(matches!(
        w.unlock(w.full(), 0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    assert_eq!(w.verifier.state().clock_floor, T0 - 3600);
    assert_eq!(w.verifier.now(0), T0 - 3600);
    let hello = Hello::decode(&w.hello(5)).unwrap();
    assert_eq!(hello.machine_time, T0 - 3600);

    // A grant that expired before the floor stays expired with the RTC set back.
    w.grant = w
        .issuer
        .grant(grant_body("key_old", &w.phone, &[MACHINE], 100, T0 - 7200));
    let params = w.params(Command::Unlock, w.full());
    let hello = w.hello(0);
    let mut phone = PhoneUnlock::new(params, at(T0 - 7300)).unwrap();
    let needed = phone.on_hello(&hello, &w.rng).unwrap();
    let request = phone.on_signature(w.phone.sign(&needed.transcript)).unwrap();
    assert_eq!(
        denied(&w.verifier.handle(&request, 200)),
        Some(ReasonCode::Expired)
    );

    // The floor survives a restart.
    let state = w.verifier.state().clone();
    assert_eq!(w.machine.verifier_with(&w.issuer, state).now(0), T0 - 3600);
}

#[test]
fn a_revocation_lists_issued_at_also_moves_the_floor() {
    let mut w = World::new();
    let list = w.issuer.revocations(MACHINE, 1, T0 + 50, vec![]);
    assert!(w.verifier.apply_revocations(list.as_bytes()).unwrap().persist);
    assert_eq!(w.verifier.now(0), T0 + 50);
    // An older sequence does not become the list, but its signed time still counts.
    let later_but_lower = w.issuer.revocations(MACHINE, 0, T0 + 60, vec![]);
    let update = w.verifier.apply_revocations(later_but_lower.as_bytes()).unwrap();
    assert_eq!(
        update,
        RevocationUpdate {
            kept: false,
            persist: true
        }
    );
    assert_eq!(w.verifier.now(0), T0 + 60);
}

#[test]
fn an_expired_cached_grant_is_forgotten_so_the_renewed_one_can_be_sent() {
    let mut w = World::new();
    w.grant = w
        .issuer
        .grant(grant_body(KEY, &w.phone, &[MACHINE], T0 - 60, T0 + 60));
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    // A day later the phone has synced a renewed grant but still tries warm first.
    w.phone_now = T0 + DAY;
    w.grant = w
        .issuer
        .grant(grant_body(KEY, &w.phone, &[MACHINE], T0 + DAY - 60, T0 + 2 * DAY));
    assert_eq!(
        w.unlock(w.cached(), T0 + DAY).phone,
        Ok(UnlockOutcome::UnknownGrant)
    );
    assert!(matches!(
        w.unlock(w.full(), T0 + DAY).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Framing and the cache bound

#[test]
fn a_broken_fragment_stream_costs_the_challenge_and_leaves_the_relay_alone() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let mut fragments = fragment(&request, 23).unwrap();
    fragments.swap(1, 2);
    let mut receiver = Reassembler::new();
    let error = fragments
        .iter()
        .find_map(|f| receiver.push(f).err())
        .expect("out-of-order fragments are refused");
    assert_eq!(error, FrameError::OutOfOrder { expected: 1, got: 2 });
    let outcome = w.verifier.frame_error(error);
    assert_eq!(outcome.decision, Decision::Denied(ReasonCode::Malformed));
    assert_eq!(plain_error(&outcome.reply), ReasonCode::Malformed);
    assert_eq!(
        denied(&w.verifier.handle(&request, T0)),
        Some(ReasonCode::StaleChallenge)
    );
}

#[test]
fn the_grant_cache_stays_bounded_and_forgets_the_least_recently_used() {
    let mut w = World::new();
    let mut state = MachineState::default();
    for i in 0..machine::GRANT_CACHE_CAPACITY {
        state.grant_cache.insert(
            format!("key_{i:016}"),
            machine::CachedGrant {
                grant: vec![0],
                last_used: 1000 + i as u64,
            },
        );
    }
    w.verifier = w.machine.verifier_with(&w.issuer, state);
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    let cache = &w.verifier.state().grant_cache;
    assert_eq!(cache.len(), machine::GRANT_CACHE_CAPACITY);
    assert!(cache.contains_key(KEY));
    assert!(!cache.contains_key(&format!("key_{:016}", 0)));
    assert!(cache.contains_key(&format!("key_{:016}", 1)));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let w = World::new();
    let config = w.machine.config(&w.issuer);
    let pkcs8 = crate::encoding::hex(&config.machine_key_pkcs8);
    let debug = format!("{config:?} {:?} {:?}", w.verifier, w.machine);
    assert!(debug.contains("redacted"));
    assert!(!debug.contains(&pkcs8[pkcs8.len() - 64..]));
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    let mut machine = w.machine.verifier(&w.issuer);
    let hello = machine.hello(T0, &w.rng).unwrap().message;
    phone.on_hello(&hello, &w.rng).unwrap();
    assert_eq!(
        format!("{phone:?}"),
        format!(
            "PhoneUnlock {{ machine_id: \"{MACHINE}\", command: Unlock, key_id: \"{KEY}\", phase: \"awaiting signature\", .. }}"
        )
    );
}

// ---------------------------------------------------------------------------------------
// The rest of the attack suite (SECURITY.md): each refused with a typed reason, the relay
// untouched. A refusal never records a usage session, so `next_usage_session` standing
// still is the sans-IO proof that the relay did not move.

/// Asserts `outcome` is a refusal for `reason` that left the relay alone.
fn assert_refused(w: &World, outcome: &Outcome, reason: ReasonCode, sessions_before: u32) {
    assert_eq!(outcome.decision, Decision::Denied(reason));
    assert_eq!(
        w.verifier.state().next_usage_session,
        sessions_before,
        "a refusal must not touch the relay"
    );
}

/// Feeds `fragments` to the machine as its BLE link does: reassembled, a framing error
/// answered by [`MachineVerifier::frame_error`]. `None` while the message is incomplete.
fn deliver(w: &mut World, fragments: &[Vec<u8>], rtc: u64) -> Option<Outcome> {
    let mut receiver = Reassembler::new();
    for f in fragments {
        match receiver.push(f) {
            Ok(Some(message)) => return Some(w.verifier.handle(&message, rtc)),
            Ok(None) => {}
            Err(e) => return Some(w.verifier.frame_error(e)),
        }
    }
    None
}

/// A Hello outstanding and the phone's genuine request for it, cut at MTU 23.
fn outstanding_request_fragments(w: &mut World) -> (Vec<u8>, Vec<Vec<u8>>) {
    let hello = w.hello(T0);
    let (_, request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
    let fragments = fragment(&request, 23).unwrap();
    assert!(fragments.len() > 3);
    (request, fragments)
}

/// After a framing error the intact request is worthless: the challenge went with it.
fn assert_challenge_gone(w: &mut World, request: &[u8]) {
    let sessions = w.verifier.state().next_usage_session;
    let retry = w.verifier.handle(request, T0);
    assert_refused(w, &retry, ReasonCode::StaleChallenge, sessions);
}

#[test]
fn truncated_fragment_stream_is_refused() {
    let mut w = World::new();
    let (request, mut fragments) = outstanding_request_fragments(&mut w);
    // The last fragment arrives cut short (L set, bytes missing).
    let last = fragments.last_mut().unwrap();
    last.truncate(last.len() - 1);
    let outcome = deliver(&mut w, &fragments, T0).expect("the L flag ends the message");
    assert_refused(&w, &outcome, ReasonCode::Malformed, 1);
    assert_eq!(plain_error(&outcome.reply), ReasonCode::Malformed);
    assert_challenge_gone(&mut w, &request);

    // A stream that just stops never reaches the verifier; the disconnect drops the challenge.
    let (request, fragments) = outstanding_request_fragments(&mut w);
    assert!(deliver(&mut w, &fragments[..fragments.len() - 1], T0).is_none());
    w.verifier.disconnected();
    assert_challenge_gone(&mut w, &request);
}

#[test]
fn oversize_message_is_refused() {
    // Announced above 1024 bytes: refused at the first fragment.
    let mut w = World::new();
    let (request, mut fragments) = outstanding_request_fragments(&mut w);
    fragments[0][1..3].copy_from_slice(&(MAX_MESSAGE_LEN as u16 + 1).to_be_bytes());
    let outcome = deliver(&mut w, &fragments, T0).unwrap();
    assert_refused(&w, &outcome, ReasonCode::Malformed, 1);
    assert_challenge_gone(&mut w, &request);

    // More bytes than announced: refused at the fragment that overruns.
    let (request, mut fragments) = outstanding_request_fragments(&mut w);
    fragments[0][1..3].copy_from_slice(&(request.len() as u16 - 1).to_be_bytes());
    let outcome = deliver(&mut w, &fragments, T0).unwrap();
    assert_refused(&w, &outcome, ReasonCode::Malformed, 1);
    assert_challenge_gone(&mut w, &request);

    // The phone never builds one: a request beyond 1024 bytes cannot be framed.
    assert_eq!(
        fragment(&vec![0; MAX_MESSAGE_LEN + 1], 185),
        Err(FrameError::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1
        })
    );
}

#[test]
fn duplicated_fragment_is_refused() {
    let mut w = World::new();
    let (request, mut fragments) = outstanding_request_fragments(&mut w);
    let again = fragments[1].clone();
    fragments.insert(2, again);
    let mut receiver = Reassembler::new();
    let error = fragments.iter().find_map(|f| receiver.push(f).err()).unwrap();
    assert_eq!(error, FrameError::OutOfOrder { expected: 2, got: 1 });
    let outcome = deliver(&mut w, &fragments, T0).unwrap();
    assert_refused(&w, &outcome, ReasonCode::Malformed, 1);
    assert_challenge_gone(&mut w, &request);

    // A whole message delivered twice is a replay: the second copy finds no challenge.
    let (request, fragments) = outstanding_request_fragments(&mut w);
    let first = deliver(&mut w, &fragments, T0).unwrap();
    assert!(matches!(first.decision, Decision::Unlocked { .. }));
    let sessions = w.verifier.state().next_usage_session;
    let second = deliver(&mut w, &fragments, T0).unwrap();
    assert_refused(&w, &second, ReasonCode::StaleChallenge, sessions);
    assert_eq!(w.verifier.handle(&request, T0).decision, second.decision);
}

#[test]
fn reordered_fragments_are_refused() {
    let mut w = World::new();
    let (request, mut fragments) = outstanding_request_fragments(&mut w);
    let n = fragments.len();
    fragments.swap(n - 2, n - 3);
    let outcome = deliver(&mut w, &fragments, T0).unwrap();
    assert_refused(&w, &outcome, ReasonCode::Malformed, 1);
    assert_eq!(plain_error(&outcome.reply), ReasonCode::Malformed);
    assert_challenge_gone(&mut w, &request);
}

#[test]
fn a_downgraded_protocol_version_is_refused() {
    // A request claiming version 0 (or any version but 1) is refused before decryption.
    let mut w = World::new();
    for version in [0, 2] {
        let hello = w.hello(T0);
        let (_, mut request) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
        request[0] = version;
        let outcome = w.verifier.handle(&request, T0);
        assert_refused(&w, &outcome, ReasonCode::Unsupported, 1);
        assert_eq!(plain_error(&outcome.reply), ReasonCode::Unsupported);
        // Putting the version back does not help: the challenge is spent.
        request[0] = 1;
        assert_challenge_gone(&mut w, &request);
    }

    // A Hello claiming another version is refused by the phone, which then sends nothing.
    let mut hello = w.hello(T0);
    hello[0] = 0;
    let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
    assert_eq!(
        phone.on_hello(&hello, &w.rng),
        Err(UnlockError::Decode(DecodeError::UnsupportedVersion(0)))
    );
    assert_eq!(phone.on_signature([0; 64]), Err(UnlockError::OutOfTurn));

    // A grant of another version does not decode, so it can never verify.
    let mut grant_bytes = w.grant.as_bytes().to_vec();
    grant_bytes[0] = 0;
    let hello = w.hello(T0);
    let (request, _) = forge(&hello, |eph| RequestPlaintext {
        credential: Credential::Full { grant_bytes },
        ..signed(&hello, eph, &w.grant, &w.phone)
    });
    let outcome = w.verifier.handle(&request, T0);
    assert_refused(&w, &outcome, ReasonCode::Unsupported, 1);
}

#[test]
fn a_request_made_for_another_machine_does_not_open_this_one() {
    let mut w = World::new();
    // One grant opens both machines; the phone talks to the other one.
    w.grant = w.issuer.grant(grant_body(
        KEY,
        &w.phone,
        &[MACHINE, OTHER_MACHINE],
        T0 - 60,
        T0 + DAY,
    ));
    let other = TestMachine::new(OTHER_MACHINE);
    let mut other_verifier = other.verifier(&w.issuer);
    let other_hello = other_verifier.hello(T0, &w.rng).unwrap().message;
    let mut params = w.params(Command::Unlock, w.full());
    params.machine_id = OTHER_MACHINE.into();
    params.machine_public_key = other.public_key().to_vec();
    let (_, captured) = w.request(&other_hello, params, &w.phone);

    // Relayed to this machine with no challenge outstanding: stale.
    let outcome = w.verifier.handle(&captured, T0);
    assert_refused(&w, &outcome, ReasonCode::StaleChallenge, 1);
    // With this machine's own Hello outstanding: it does not even decrypt.
    w.hello(T0);
    let outcome = w.verifier.handle(&captured, T0);
    assert_refused(&w, &outcome, ReasonCode::BadCiphertext, 1);
    assert!(w.verifier.state().grant_cache.is_empty());
    // The other machine was never asked, so the request still opens it: only there.
    assert!(matches!(
        other_verifier.handle(&captured, T0).decision,
        Decision::Unlocked { .. }
    ));
}

#[test]
fn a_revocation_list_carried_by_another_phone_revokes_the_grant() {
    for min_serial in [2, REVOKED_ENTIRELY] {
        let mut w = World::new();
        // Ann's phone unlocks: the machine caches her grant.
        assert!(matches!(
            w.unlock(w.full(), T0).phone,
            Ok(UnlockOutcome::Unlocked { .. })
        ));
        // Bob's phone (a fresh key), with its own grant, carries the list that revokes Ann's.
        let ann = std::mem::take(&mut w.phone);
        let bob_grant = w.issuer.grant(grant_body(
            "key_bbbbbbbbbbbbbbbb",
            &w.phone,
            &[MACHINE],
            T0 - 60,
            T0 + DAY,
        ));
        let ann_grant = std::mem::replace(&mut w.grant, bob_grant);
        let list = w
            .issuer
            .revocations(MACHINE, 1, T0 + 10, vec![entry(KEY, min_serial)]);
        let mut params = w.params(Command::Unlock, w.full());
        params.revocations = Some(list.as_bytes().to_vec());
        let bob = w.exchange(params, T0 + 20);
        assert!(matches!(bob.phone, Ok(UnlockOutcome::Unlocked { .. })));
        assert!(bob.machine.persist);
        assert_eq!(w.verifier.state().revocation_sequence, 1);

        // Ann comes back, offline, with her old grant: warm and cold are both refused.
        w.phone = ann;
        w.grant = ann_grant;
        let sessions = w.verifier.state().next_usage_session;
        let warm = w.unlock(w.cached(), T0 + 30);
        let expected_warm = if min_serial == REVOKED_ENTIRELY {
            Decision::Denied(ReasonCode::Revoked)
        } else {
            // An edited key: the machine forgets serial 1 and asks for the newer grant.
            Decision::Denied(ReasonCode::UnknownGrant)
        };
        assert_eq!(warm.machine.decision, expected_warm);
        assert!(!w.verifier.state().grant_cache.contains_key(KEY));
        let cold = w.unlock(w.full(), T0 + 31);
        assert_eq!(cold.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));
        assert_refused(&w, &cold.machine, ReasonCode::Revoked, sessions);
    }
}

#[test]
fn counter_rollback_in_restored_state_never_reuses_a_challenge() {
    let mut w = World::new();
    assert!(matches!(
        w.unlock(w.full(), T0).phone,
        Ok(UnlockOutcome::Unlocked { .. })
    ));
    let snapshot = w.verifier.state().clone();

    // An attacker blocks the phone's next request and keeps it.
    let hello = w.hello(T0 + 10);
    let (_, captured) = w.request(&hello, w.params(Command::Unlock, w.cached()), &w.phone);
    let captured_hello = Hello::decode(&hello).unwrap();
    w.verifier.disconnected();

    // The machine's storage is rolled back to the older snapshot and it restarts.
    w.verifier = w.machine.verifier_with(&w.issuer, snapshot);
    let sessions = w.verifier.state().next_usage_session;
    let outcome = w.verifier.handle(&captured, T0 + 11);
    assert_refused(&w, &outcome, ReasonCode::StaleChallenge, sessions);

    // Even when the rolled-back counter repeats, the challenge does not: its ephemeral key
    // is fresh and lived in memory only, so the captured request does not decrypt.
    let again = Hello::decode(&w.hello(T0 + 11)).unwrap();
    assert_eq!(again.hello_counter, captured_hello.hello_counter);
    assert_ne!(
        again.machine_ephemeral_public_key,
        captured_hello.machine_ephemeral_public_key
    );
    let outcome = w.verifier.handle(&captured, T0 + 11);
    assert_refused(&w, &outcome, ReasonCode::BadCiphertext, sessions);
    assert_eq!(plain_error(&outcome.reply), ReasonCode::BadCiphertext);
}

#[test]
fn phone_clock_set_forward_cannot_dodge_expiry() {
    // The grant starts in an hour by the machine's clock; the phone's clock is set a day
    // ahead, so the phone's own check passes. The machine judges by its own clock.
    let mut w = World::new();
    let mut body = grant_body(KEY, &w.phone, &[MACHINE], T0 + 3600, T0 + 2 * DAY);
    body.issued_at = T0 - 60;
    w.grant = w.issuer.grant(body);
    w.phone_now = T0 + DAY;
    let early = w.unlock(w.full(), T0);
    assert_eq!(early.phone, Ok(UnlockOutcome::Denied(ReasonCode::NotYetValid)));
    assert_refused(&w, &early.machine, ReasonCode::NotYetValid, 1);

    // The grant expired yesterday by the machine's clock; the phone's clock says it is
    // still inside the window. Refused all the same.
    let mut w = World::new();
    w.grant = w
        .issuer
        .grant(grant_body(KEY, &w.phone, &[MACHINE], T0 - 2 * DAY, T0 - DAY));
    w.phone_now = T0 - DAY - 60;
    let late = w.unlock(w.full(), T0);
    assert_eq!(late.phone, Ok(UnlockOutcome::Denied(ReasonCode::Expired)));
    assert_refused(&w, &late.machine, ReasonCode::Expired, 1);
}

// ---------------------------------------------------------------------------------------
// The budget (PROTOCOL.md 2.9)

#[test]
fn message_sizes_match_the_budget() {
    let mut w = World::new();
    let hello = w.hello(T0);
    let cold = w.unlock(w.full(), T0);
    let warm = w.unlock(w.cached(), T0 + 1);
    let sizes = (
        hello.len(),
        warm.request.len(),
        cold.request.len(),
        warm.machine.reply.len(),
        w.grant.as_bytes().len(),
    );
    println!(
        "hello {} warm {} cold {} result {} grant {}",
        sizes.0, sizes.1, sizes.2, sizes.3, sizes.4
    );
    assert_eq!(sizes, (166, 169, 359, 25, 211));
    // Two writes at MTU 185 carry (185 − 3) · 2 − 3 − 1 = 360 bytes of message.
    assert_eq!(fragment(&cold.request, 185).unwrap().len(), 2);
    assert_eq!(fragment(&warm.request, 185).unwrap().len(), 1);
    assert_eq!(
        ErrorMessage {
            code: ReasonCode::Expired
        }
        .encode()
        .len(),
        3
    );
}

// ---------------------------------------------------------------------------------------
// Nothing panics on hostile bytes

proptest! {
    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Grant::decode(&bytes);
        let _ = RevocationList::decode(&bytes);
        let _ = Hello::decode(&bytes);
        let _ = Request::decode(&bytes);
        let _ = RequestPlaintext::decode(&bytes);
        let _ = ResultPlaintext::decode(&bytes);
        let _ = ErrorMessage::decode(&bytes);
        let _ = message_type(&bytes);
        let _ = decode_result(&bytes);
        let _ = der_to_raw(&bytes);
    }

    #[test]
    fn random_bytes_with_a_valid_header_never_panic_a_decoder(
        kind in 0u8..5,
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![1, kind];
        bytes.extend_from_slice(&body);
        let _ = Hello::decode(&bytes);
        let _ = Request::decode(&bytes);
        let _ = ErrorMessage::decode(&bytes);
        let _ = super::messages::HelloRequest::decode(&bytes);
        let mut grant = vec![1];
        grant.extend_from_slice(&body);
        let _ = Grant::decode(&grant);
        let _ = RevocationList::decode(&grant);
        let mut plain = vec![1, 1 + kind % 2];
        plain.extend_from_slice(&body);
        let _ = RequestPlaintext::decode(&plain);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_messages_never_panic_either_end(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        header in 0u8..5,
    ) {
        let mut w = World::new();
        let mut message = vec![1, header];
        message.extend_from_slice(&bytes);
        for m in [&bytes, &message] {
            w.hello(T0);
            let outcome = w.verifier.handle(m, T0);
            let refused = matches!(outcome.decision, Decision::Denied(_) | Decision::NeedsHello);
            prop_assert!(refused);
            let mut phone = PhoneUnlock::new(w.params(Command::Unlock, w.full()), at(T0)).unwrap();
            prop_assert!(phone.on_hello(m, &w.rng).is_err());
        }
        let hello = w.hello(T0);
        let (mut phone, _) = w.request(&hello, w.params(Command::Unlock, w.full()), &w.phone);
        let result = phone.on_result(&message);
        let opened = matches!(result, Ok(UnlockOutcome::Unlocked { .. } | UnlockOutcome::Locked { .. }));
        prop_assert!(!opened);
    }
}
