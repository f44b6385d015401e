//! Rolling PIN (PROTOCOL.md Part 3) against the RFC vectors and its window properties.

use opkey_protocol::pin::{
    ACCEPTED_SKEW_STEPS, KeypadEntry, KeypadEntryError, KeypadSlot, MAX_DIGITS, MAX_PERIOD_S, MAX_SLOT,
    MIN_DIGITS, MIN_PERIOD_S, PinAlgorithm, PinSeed, PinSpec, code_at_step, false_accept_per_guess, hotp,
    matching_step, rolling_pin, totp, validate_static_pin,
};
use proptest::prelude::*;

/// The RFC 6238 Appendix B seed for `algorithm`: ASCII "1234567890" repeated to 20 bytes
/// (SHA1), 32 bytes (SHA256) or 64 bytes (SHA512).
fn rfc_seed(algorithm: PinAlgorithm) -> PinSeed {
    let len = match algorithm {
        PinAlgorithm::Sha1 => 20,
        PinAlgorithm::Sha256 => 32,
        PinAlgorithm::Sha512 => 64,
    };
    PinSeed::new(b"1234567890".iter().copied().cycle().take(len).collect()).unwrap()
}

fn spec(algorithm: PinAlgorithm, digits: u8, period_s: u32) -> PinSpec {
    PinSpec {
        algorithm,
        digits,
        period_s,
    }
}

fn rolling(entry: Result<KeypadEntry, KeypadEntryError>) -> (u16, String) {
    match entry {
        Ok(KeypadEntry::Rolling { slot, code }) => (slot.get(), code.as_str().to_owned()),
        other => panic!("not a rolling entry: {other:?}"),
    }
}

fn static_pin(entry: Result<KeypadEntry, KeypadEntryError>) -> String {
    match entry {
        Ok(KeypadEntry::Static(pin)) => pin.as_str().to_owned(),
        other => panic!("not a static entry: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// RFC vectors

#[test]
fn rfc6238_appendix_b_all_vectors() {
    use PinAlgorithm::{Sha1, Sha256, Sha512};
    let vectors: [(i64, &str, PinAlgorithm); 18] = [
        (59, "94287082", Sha1),
        (59, "46119246", Sha256),
        (59, "90693936", Sha512),
        (1_111_111_109, "07081804", Sha1),
        (1_111_111_109, "68084774", Sha256),
        (1_111_111_109, "25091201", Sha512),
        (1_111_111_111, "14050471", Sha1),
        (1_111_111_111, "67062674", Sha256),
        (1_111_111_111, "99943326", Sha512),
        (1_234_567_890, "89005924", Sha1),
        (1_234_567_890, "91819424", Sha256),
        (1_234_567_890, "93441116", Sha512),
        (2_000_000_000, "69279037", Sha1),
        (2_000_000_000, "90698825", Sha256),
        (2_000_000_000, "38618901", Sha512),
        (20_000_000_000, "65353130", Sha1),
        (20_000_000_000, "77737706", Sha256),
        (20_000_000_000, "47863826", Sha512),
    ];
    for (t, want, algorithm) in vectors {
        let seed = rfc_seed(algorithm);
        let spec = spec(algorithm, 8, 30);
        assert_eq!(totp(&seed, &spec, t), want, "{algorithm} at {t}");
        // The keypad on the same clock accepts it at the phone's step.
        assert_eq!(
            matching_step(&seed, &spec, want, t),
            Some(spec.step_at(t)),
            "{algorithm} at {t}"
        );
    }
}

/// RFC 4226 Appendix D: the 31-bit truncated values (the "Decimal" column) and the 6-digit
/// HOTPs. With 10 digits there is no modulo: the code is the truncated value itself.
#[test]
fn rfc4226_appendix_d_truncated_values_and_codes() {
    let seed = rfc_seed(PinAlgorithm::Sha1);
    let decimal: [u32; 10] = [
        1_284_755_224,
        1_094_287_082,
        137_359_152,
        1_726_969_429,
        1_640_338_314,
        868_254_676,
        1_918_287_922,
        82_162_583,
        673_399_871,
        645_520_489,
    ];
    let six = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
    ];
    for (counter, (value, code)) in decimal.into_iter().zip(six).enumerate() {
        let counter = counter as u64;
        assert_eq!(
            hotp(&seed, PinAlgorithm::Sha1, counter, 10),
            value,
            "counter {counter}"
        );
        assert_eq!(hotp(&seed, PinAlgorithm::Sha1, counter, 6), value % 1_000_000);
        let six_digits = spec(PinAlgorithm::Sha1, 6, 30);
        assert_eq!(code_at_step(&seed, &six_digits, counter), code);
        let ten_digits = spec(PinAlgorithm::Sha1, 10, 30);
        assert_eq!(code_at_step(&seed, &ten_digits, counter), format!("{value:010}"));
    }
}

#[test]
fn codes_with_leading_zeros_keep_their_length() {
    let seed = rfc_seed(PinAlgorithm::Sha1);
    // Counter 2 truncates to 137359152 and counter 7 to 82162583: 10 digits pad them.
    let ten = spec(PinAlgorithm::Sha1, 10, 30);
    assert_eq!(code_at_step(&seed, &ten, 2), "0137359152");
    assert_eq!(code_at_step(&seed, &ten, 7), "0082162583");
    // RFC 6238 at 1111111109 (SHA1, 8 digits) starts with a zero.
    let eight = spec(PinAlgorithm::Sha1, 8, 30);
    assert_eq!(totp(&seed, &eight, 1_111_111_109), "07081804");
    // It goes through the keypad with its zero: slot prefix + 8 digits = 11.
    let pin = rolling_pin(&seed, &eight, KeypadSlot::new(1).unwrap(), 1_111_111_109);
    assert_eq!(pin.pin.as_str(), "00107081804");
    let (slot, code) = rolling(KeypadEntry::parse(&pin.pin));
    assert_eq!((slot, code.as_str()), (1, "07081804"));
    assert_eq!(matching_step(&seed, &eight, &code, 1_111_111_109), Some(pin.step));
    // Without the zero it is a 7-digit code and never matches an 8-digit key.
    assert_eq!(matching_step(&seed, &eight, "7081804", 1_111_111_109), None);
}

#[test]
fn a_ten_digit_pin_is_thirteen_digits_on_the_keypad() {
    let seed = rfc_seed(PinAlgorithm::Sha256);
    let ten = spec(PinAlgorithm::Sha256, 10, 60);
    let pin = rolling_pin(&seed, &ten, KeypadSlot::new(MAX_SLOT).unwrap(), 1_700_000_000);
    assert_eq!(pin.pin.len(), 13);
    assert!(pin.pin.starts_with("495"));
    let (slot, code) = rolling(KeypadEntry::parse(&pin.pin));
    assert_eq!(slot, 495);
    // No modulo at 10 digits: the code is the 31-bit truncation, below 2^31.
    assert!(code.parse::<u64>().unwrap() < 1 << 31);
    assert_eq!(matching_step(&seed, &ten, &code, 1_700_000_000), Some(pin.step));
}

// ---------------------------------------------------------------------------------------
// Time edges

#[test]
fn times_before_1970_and_far_in_the_future_do_not_panic() {
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -1_000_000_000,
        -1,
        0,
        1,
        i64::from(u32::MAX) - 1,
        i64::from(u32::MAX),
        i64::from(u32::MAX) + 1,
        i64::from(i32::MAX),
        i64::from(i32::MAX) + 1,
        253_402_300_799, // 9999-12-31T23:59:59Z
        i64::MAX - 1,
        i64::MAX,
    ];
    for algorithm in PinAlgorithm::ALL {
        let seed = rfc_seed(algorithm);
        for (digits, period_s) in [(MIN_DIGITS, MIN_PERIOD_S), (MAX_DIGITS, MAX_PERIOD_S), (6, 60)] {
            let spec = spec(algorithm, digits, period_s);
            for t in times {
                let code = totp(&seed, &spec, t);
                assert_eq!(code.len(), usize::from(digits));
                let pin = rolling_pin(&seed, &spec, KeypadSlot::new(1).unwrap(), t);
                assert_eq!(pin.pin.len(), 3 + usize::from(digits));
                assert!(pin.valid_from <= pin.valid_until && pin.valid_until <= pin.accepted_until);
                // The keypad on the same clock accepts what the phone shows.
                assert_eq!(matching_step(&seed, &spec, &code, t), Some(pin.step), "{t}");
            }
        }
    }
}

#[test]
fn before_1970_is_step_zero() {
    let seed = rfc_seed(PinAlgorithm::Sha256);
    let spec = PinSpec::default();
    for t in [i64::MIN, -61, -1] {
        assert_eq!(spec.step_at(t), 0);
        assert_eq!(totp(&seed, &spec, t), totp(&seed, &spec, 0));
    }
    // Step 0 has no step before it: a keypad at step 0 or 1 accepts it, at step 2 not.
    let code = code_at_step(&seed, &spec, 0);
    assert_eq!(matching_step(&seed, &spec, &code, -5), Some(0));
    assert_eq!(matching_step(&seed, &spec, &code, 119), Some(0));
    if code != code_at_step(&seed, &spec, 1)
        && code != code_at_step(&seed, &spec, 2)
        && code != code_at_step(&seed, &spec, 3)
    {
        assert_eq!(matching_step(&seed, &spec, &code, 120), None);
    }
}

#[test]
fn the_last_steps_saturate_instead_of_overflowing() {
    let spec = spec(PinAlgorithm::Sha1, 6, 30);
    let last = spec.step_at(i64::MAX);
    assert_eq!(last, i64::MAX as u64 / 30);
    assert_eq!(spec.step_start(last), (i64::MAX / 30) * 30);
    assert_eq!(spec.step_start(last + 1), i64::MAX);
    assert_eq!(spec.step_start(u64::MAX), i64::MAX);
    let pin = rolling_pin(
        &rfc_seed(PinAlgorithm::Sha1),
        &spec,
        KeypadSlot::new(9).unwrap(),
        i64::MAX,
    );
    assert_eq!(
        (pin.step, pin.valid_until, pin.accepted_until),
        (last, i64::MAX, i64::MAX)
    );
}

#[test]
fn codes_of_the_wrong_shape_never_match() {
    let seed = rfc_seed(PinAlgorithm::Sha256);
    let spec = PinSpec::default();
    let t = 1_700_000_000;
    let code = totp(&seed, &spec, t);
    assert_eq!(matching_step(&seed, &spec, &code, t), Some(spec.step_at(t)));
    assert_eq!(matching_step(&seed, &spec, &code[1..], t), None);
    assert_eq!(matching_step(&seed, &spec, &format!("{code}0"), t), None);
    assert_eq!(matching_step(&seed, &spec, &format!("0{code}"), t), None);
    assert_eq!(matching_step(&seed, &spec, "", t), None);
    assert_eq!(matching_step(&seed, &spec, "abcdef", t), None);
    // Another key's spec (7 digits) never matches a 6-digit code.
    let seven = PinSpec { digits: 7, ..spec };
    assert_eq!(matching_step(&seed, &seven, &code, t), None);
}

// ---------------------------------------------------------------------------------------
// Keypad entries

#[test]
fn keypad_entry_edges() {
    // Spaces and dashes anywhere, leading and trailing included, are ignored.
    assert_eq!(rolling(KeypadEntry::parse("  001123456  ")), (1, "123456".into()));
    assert_eq!(rolling(KeypadEntry::parse("001 123-456")), (1, "123456".into()));
    assert_eq!(
        rolling(KeypadEntry::parse("-495-000000-")),
        (495, "000000".into())
    );
    // The shortest and the longest rolling entry.
    assert_eq!(rolling(KeypadEntry::parse("042000001")), (42, "000001".into()));
    assert_eq!(
        rolling(KeypadEntry::parse("4950123456789")),
        (495, "0123456789".into())
    );
    // Static PINs: 4 to 8 digits, zeros kept, even when they look like a slot.
    assert_eq!(static_pin(KeypadEntry::parse("0000")), "0000");
    assert_eq!(static_pin(KeypadEntry::parse(" 12-34 ")), "1234");
    assert_eq!(static_pin(KeypadEntry::parse("00112345")), "00112345");
    // Lengths that are neither.
    for (typed, n) in [
        ("", 0),
        ("   ", 0),
        ("- -", 0),
        ("1", 1),
        ("123", 3),
        ("12345678901234", 14),
    ] {
        assert_eq!(
            KeypadEntry::parse(typed).unwrap_err(),
            KeypadEntryError::Length(n),
            "{typed:?}"
        );
    }
    // Slots out of range, at both ends and for every rolling length.
    for code_len in MIN_DIGITS..=MAX_DIGITS {
        let code = "7".repeat(usize::from(code_len));
        for slot in [0u16, 496, 500, 999] {
            assert_eq!(
                KeypadEntry::parse(&format!("{slot:03}{code}")).unwrap_err(),
                KeypadEntryError::NoSuchSlot(slot)
            );
        }
        let (slot, parsed) = rolling(KeypadEntry::parse(&format!("001{code}")));
        assert_eq!((slot, parsed.len()), (1, usize::from(code_len)));
    }
    // Anything but ASCII digits, spaces and dashes.
    for typed in [
        "12a4",
        "12\t34",
        "1234\n",
        "+1234",
        "12.34",
        "１２３４",
        "١٢٣٤",
        "001123456#",
        "*001123456",
    ] {
        assert_eq!(
            KeypadEntry::parse(typed).unwrap_err(),
            KeypadEntryError::NotDigits,
            "{typed:?}"
        );
    }
    // Debug never shows what was typed.
    let entry = KeypadEntry::parse("042987654").unwrap();
    assert!(!format!("{entry:?}").contains("987654"));
    assert!(!format!("{:?}", KeypadEntry::parse("9876").unwrap()).contains("9876"));
}

#[test]
fn static_pins_are_four_to_eight_digits() {
    for ok in ["0000", "1234", "12345678", "00000000"] {
        assert_eq!(validate_static_pin(ok), Ok(()), "{ok}");
    }
    assert_eq!(validate_static_pin("123"), Err(KeypadEntryError::Length(3)));
    assert_eq!(validate_static_pin("123456789"), Err(KeypadEntryError::Length(9)));
    assert_eq!(validate_static_pin("12 34"), Err(KeypadEntryError::NotDigits));
    assert_eq!(validate_static_pin(""), Err(KeypadEntryError::Length(0)));
}

#[test]
fn the_false_accept_figures_of_protocol_md() {
    // One guess against one key's three accepted codes.
    assert!((false_accept_per_guess(6) - 3e-6).abs() < 1e-18);
    assert!((false_accept_per_guess(10) - 3e-10).abs() < 1e-22);
    // A uniformly random 9-digit entry on a keypad with 495 keys: the prefix names a key
    // with probability 495/1000.
    let random_entry = f64::from(MAX_SLOT) / 1000.0 * false_accept_per_guess(6);
    assert!((random_entry - 1.485e-6).abs() < 1e-12);
    // Without a prefix every key's three codes would compete: 1.485e-3 at 6 digits, and
    // only 9 digits would bring it under 1e-5.
    let without_prefix = |d: u8| f64::from(MAX_SLOT) * false_accept_per_guess(d);
    assert!(without_prefix(8) > 1e-5 && without_prefix(9) <= 1e-5);
    assert_eq!(2 * ACCEPTED_SKEW_STEPS + 1, 3);
}

#[test]
fn pin_settings_on_the_wire() {
    assert_eq!(
        serde_json::to_string(&PinAlgorithm::Sha512).unwrap(),
        "\"sha512\""
    );
    assert_eq!(
        serde_json::from_str::<PinAlgorithm>("\"sha1\"").unwrap(),
        PinAlgorithm::Sha1
    );
    assert!(serde_json::from_str::<PinAlgorithm>("\"md5\"").is_err());
    assert_eq!(serde_json::from_str::<KeypadSlot>("495").unwrap().get(), 495);
    assert!(serde_json::from_str::<KeypadSlot>("0").is_err());
    assert!(serde_json::from_str::<KeypadSlot>("496").is_err());
    let spec: PinSpec = serde_json::from_str(r#"{"algorithm":"sha256","digits":6,"period_s":60}"#).unwrap();
    assert_eq!(spec, PinSpec::default());
}

// ---------------------------------------------------------------------------------------
// Properties

fn any_algorithm() -> impl Strategy<Value = PinAlgorithm> {
    prop_oneof![
        Just(PinAlgorithm::Sha1),
        Just(PinAlgorithm::Sha256),
        Just(PinAlgorithm::Sha512)
    ]
}

fn any_spec(digits: std::ops::RangeInclusive<u8>) -> impl Strategy<Value = PinSpec> {
    (any_algorithm(), digits, MIN_PERIOD_S..=MAX_PERIOD_S).prop_map(|(algorithm, digits, period_s)| PinSpec {
        algorithm,
        digits,
        period_s,
    })
}

fn any_seed() -> impl Strategy<Value = PinSeed> {
    prop::collection::vec(any::<u8>(), 1..=64).prop_map(|b| PinSeed::new(b).unwrap())
}

/// Phone times from one step after 1970 to ~36,800 years on: every step in the keypad's
/// window exists (step ≥ 1), and `(s + 2) · period` stays far below `i64::MAX`.
const LATEST: i64 = 1 << 40;

/// What the keypad may answer for a PIN of phone step `phone_step` checked at keypad step
/// `keypad_step`, when it is not the phone's step: a step of the keypad's window whose code
/// is *the same digits* (a genuine collision between two steps of one key, probability
/// ≤ 2/10^digits). Anything else is a bug.
fn only_a_collision(
    seed: &PinSeed,
    spec: &PinSpec,
    code: &str,
    phone_step: u64,
    keypad_step: u64,
    found: u64,
) -> Result<(), TestCaseError> {
    prop_assert_ne!(found, phone_step);
    prop_assert!(
        found.abs_diff(keypad_step) <= ACCEPTED_SKEW_STEPS,
        "step {found} is outside the keypad's window around {keypad_step}"
    );
    prop_assert_eq!(
        code_at_step(seed, spec, found),
        code,
        "step {} does not have that code",
        found
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The PIN a phone shows at `t` (step s) is accepted by a keypad whose clock reads any
    /// time whose step is s−1, s or s+1: exactly `[(s−1)·p, (s+2)·p)`, which is the phone's
    /// `[valid_from − p, accepted_until)`. The answer is the phone's step.
    ///
    /// Not flaky, still able to fail: the keypad checks s−1, s, s+1 in order and answers the
    /// first that matches, so it answers an earlier step only when that step's code is the
    /// same digits (probability ≤ 2/10^digits per case). We accept that answer only after
    /// checking it really is such a collision; a wrong step, a step outside the window or
    /// no answer at all fails.
    #[test]
    fn a_pin_is_accepted_anywhere_in_the_window(
        seed in any_seed(),
        spec in any_spec(MIN_DIGITS..=MAX_DIGITS),
        t in 0..LATEST,
        slot in 1..=MAX_SLOT,
        offset in any::<u32>(),
        edge in 0..3u8,
    ) {
        let p = i64::from(spec.period_s);
        let t = t.max(p); // step ≥ 1
        let pin = rolling_pin(&seed, &spec, KeypadSlot::new(slot).unwrap(), t);
        let s = pin.step;
        prop_assert_eq!(s, (t / p) as u64);
        prop_assert!(pin.valid_from <= t && t < pin.valid_until);
        prop_assert_eq!(pin.valid_from, s as i64 * p);
        prop_assert_eq!(pin.valid_until, pin.valid_from + p);
        prop_assert_eq!(pin.accepted_until, pin.valid_until + p);

        let first = pin.valid_from - p;
        let end = pin.accepted_until; // exclusive
        // The window's first and last second, or anywhere in it.
        let keypad_t = match edge {
            0 => first,
            1 => end - 1,
            _ => first + i64::from(offset) % (end - first),
        };
        let keypad_step = spec.step_at(keypad_t);
        prop_assert!(keypad_step.abs_diff(s) <= ACCEPTED_SKEW_STEPS);

        let (typed_slot, code) = match KeypadEntry::parse(&pin.pin) {
            Ok(KeypadEntry::Rolling { slot, code }) => (slot.get(), code),
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(typed_slot, slot);
        prop_assert_eq!(code.len(), usize::from(spec.digits));
        match matching_step(&seed, &spec, &code, keypad_t) {
            Some(found) if found == s => {}
            Some(found) => only_a_collision(&seed, &spec, &code, s, keypad_step, found)?,
            None => prop_assert!(false, "refused at keypad time {keypad_t} (phone {t})"),
        }
    }

    /// A keypad whose clock is two or more steps away from the phone's — the second before
    /// the window or the second it ends, or further — does not accept the phone's step.
    ///
    /// A different key step in the keypad's own window can share the code (probability
    /// 3/10^digits); 9–10 digits keep that to ~1e-9 per case, and when it happens we verify
    /// it is such a collision (`only_a_collision`) instead of failing: the test never
    /// flakes, and accepting the phone's own step outside the window still fails it.
    #[test]
    fn a_pin_is_refused_outside_the_window(
        seed in any_seed(),
        spec in any_spec(9..=MAX_DIGITS),
        t in 0..LATEST,
        distance in 2..1_000i64,
        before in any::<bool>(),
        edge in any::<bool>(),
        offset in any::<u32>(),
    ) {
        let p = i64::from(spec.period_s);
        let t = t.max(p);
        let s = spec.step_at(t);
        let code = totp(&seed, &spec, t);
        // The keypad reads a time whose step is s − distance or s + distance; `edge` puts it
        // on the second next to the window ((s−1)·p − 1 or (s+2)·p).
        let keypad_t = match (before, edge) {
            (true, true) => (s as i64 - 1) * p - 1,
            (false, true) => (s as i64 + 2) * p,
            (true, false) => (s as i64 - distance) * p + i64::from(offset) % p,
            (false, false) => (s as i64 + distance) * p + i64::from(offset) % p,
        };
        let keypad_step = spec.step_at(keypad_t);
        prop_assert!(keypad_step.abs_diff(s) > ACCEPTED_SKEW_STEPS);
        if let Some(found) = matching_step(&seed, &spec, &code, keypad_t) {
            only_a_collision(&seed, &spec, &code, s, keypad_step, found)?;
        }
    }

    /// Every code is exactly `digits` ASCII digits, below 10^digits (2^31 at 10 digits).
    #[test]
    fn codes_are_zero_padded_to_their_digits(
        seed in any_seed(),
        spec in any_spec(MIN_DIGITS..=MAX_DIGITS),
        step in any::<u64>(),
    ) {
        let code = code_at_step(&seed, &spec, step);
        prop_assert_eq!(code.len(), usize::from(spec.digits));
        prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let value = hotp(&seed, spec.algorithm, step, spec.digits);
        prop_assert_eq!(code.parse::<u64>().unwrap(), u64::from(value));
        prop_assert!(u64::from(value) < 10u64.pow(u32::from(spec.digits)).min(1 << 31));
    }

    /// Any time, any spec: no panic, and the phone's PIN is accepted on the phone's clock.
    #[test]
    fn any_time_is_safe(seed in any_seed(), spec in any_spec(MIN_DIGITS..=MAX_DIGITS), t in any::<i64>()) {
        let pin = rolling_pin(&seed, &spec, KeypadSlot::new(1).unwrap(), t);
        prop_assert!(pin.valid_from <= pin.valid_until && pin.valid_until <= pin.accepted_until);
        let code = &pin.pin[3..];
        prop_assert_eq!(matching_step(&seed, &spec, code, t), Some(pin.step));
    }

    /// A slot and a code, grouped with spaces and dashes and padded either side, parse back.
    #[test]
    fn typed_rolling_entries_parse_back(
        slot in 1..=MAX_SLOT,
        code in "[0-9]{6,10}",
        lead in "[ -]{0,3}",
        trail in "[ -]{0,3}",
        group in any::<bool>(),
    ) {
        let prefix = KeypadSlot::new(slot).unwrap().prefix();
        let typed = if group {
            format!("{lead}{prefix} {} {}{trail}", &code[..3], &code[3..])
        } else {
            format!("{lead}{prefix}{code}{trail}")
        };
        match KeypadEntry::parse(&typed) {
            Ok(KeypadEntry::Rolling { slot: got, code: got_code }) => {
                prop_assert_eq!(got.get(), slot);
                prop_assert_eq!(got_code.as_str(), code.as_str());
            }
            other => prop_assert!(false, "{typed:?}: {other:?}"),
        }
    }

    /// Whatever is typed, parsing answers without panicking, and an `Ok` is consistent
    /// with the digits typed.
    #[test]
    fn parsing_never_panics(typed in any::<String>(), digits in "[0-9 -]{0,20}") {
        for text in [typed.as_str(), digits.as_str()] {
            let kept: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            match KeypadEntry::parse(text) {
                Ok(KeypadEntry::Static(pin)) => prop_assert_eq!(pin.as_str(), kept.as_str()),
                Ok(KeypadEntry::Rolling { slot, code }) => {
                    prop_assert_eq!(format!("{}{}", slot.prefix(), code.as_str()), kept);
                }
                Err(_) => {}
            }
        }
    }
}
