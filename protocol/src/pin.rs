//! # Rolling PIN (PROTOCOL.md Part 3)
//!
//! The PIN an operator reads on the phone and types on a machine's keypad, which checks it
//! offline. The code is RFC 6238 TOTP (RFC 4226 HOTP over a time step) with HMAC-SHA1,
//! -SHA256 or -SHA512, 6–10 digits and a period per key. What the operator types is the
//! key's 3-digit keypad slot followed by the code ([`KeypadEntry`]): the slot is not
//! secret, it tells the keypad which one of its up to 495 keys to check, so a guess
//! competes with one key's three accepted steps instead of every key's.
//!
//! Static PINs (4–8 digits) and rolling entries (9–13 digits) never have the same length,
//! so a keypad tells them apart without a mode key.
//!
//! Pure functions: no clock, no I/O. Seeds never appear in `Debug` output or errors.

use ring::hmac;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use zeroize::Zeroizing;

/// Fewest digits of a rolling code (RFC 4226 asks for at least 6).
pub const MIN_DIGITS: u8 = 6;
/// Most digits of a rolling code: dynamic truncation yields 31 bits, so 10 is the ceiling.
pub const MAX_DIGITS: u8 = 10;
/// Shortest period a key may have, seconds.
pub const MIN_PERIOD_S: u32 = 30;
/// Longest period a key may have, seconds.
pub const MAX_PERIOD_S: u32 = 3600;
/// The default period: long enough to read the PIN and walk to the machine.
pub const DEFAULT_PERIOD_S: u32 = 60;
/// The default number of code digits (the operator types 3 + 6 = 9).
pub const DEFAULT_DIGITS: u8 = 6;
/// Steps either side of the keypad's own step that it accepts (±1).
pub const ACCEPTED_SKEW_STEPS: u64 = 1;
/// Keypad slots run from 1 to this: the most rolling keys one keypad holds.
pub const MAX_SLOT: u16 = 495;
/// Digits of the slot prefix.
pub const SLOT_DIGITS: usize = 3;
/// Shortest and longest static PIN.
pub const STATIC_PIN_MIN_DIGITS: usize = 4;
pub const STATIC_PIN_MAX_DIGITS: usize = 8;

/// The HMAC behind a key's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PinAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

impl PinAlgorithm {
    pub const ALL: [PinAlgorithm; 3] = [PinAlgorithm::Sha1, PinAlgorithm::Sha256, PinAlgorithm::Sha512];

    pub fn as_str(self) -> &'static str {
        match self {
            PinAlgorithm::Sha1 => "sha1",
            PinAlgorithm::Sha256 => "sha256",
            PinAlgorithm::Sha512 => "sha512",
        }
    }

    /// The seed length RFC 4226/6238 recommend: the hash's output length.
    pub fn seed_len(self) -> usize {
        match self {
            PinAlgorithm::Sha1 => 20,
            PinAlgorithm::Sha256 => 32,
            PinAlgorithm::Sha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            PinAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            PinAlgorithm::Sha256 => hmac::HMAC_SHA256,
            PinAlgorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for PinAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PinAlgorithm {
    type Err = PinSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['-', '_'], "");
        PinAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == wanted)
            .ok_or_else(|| PinSpecError::UnknownAlgorithm(s.to_owned()))
    }
}

/// How a key's codes are made: algorithm, digits and period. Not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinSpec {
    pub algorithm: PinAlgorithm,
    /// 6 to 10.
    pub digits: u8,
    /// Seconds per step, 30 to 3600.
    pub period_s: u32,
}

impl Default for PinSpec {
    fn default() -> Self {
        Self {
            algorithm: PinAlgorithm::default(),
            digits: DEFAULT_DIGITS,
            period_s: DEFAULT_PERIOD_S,
        }
    }
}

/// A PIN setting that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinSpecError {
    #[error("a rolling PIN has {MIN_DIGITS} to {MAX_DIGITS} digits, not {0}")]
    Digits(u8),
    #[error("a rolling PIN period is {MIN_PERIOD_S} to {MAX_PERIOD_S} seconds, not {0}")]
    Period(u32),
    #[error("unknown PIN algorithm '{0}': use sha1, sha256 or sha512")]
    UnknownAlgorithm(String),
    #[error("a keypad slot is 1 to {MAX_SLOT}, not {0}")]
    Slot(u32),
    #[error("a PIN seed must not be empty")]
    EmptySeed,
}

impl PinSpec {
    pub fn validate(&self) -> Result<(), PinSpecError> {
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&self.digits) {
            return Err(PinSpecError::Digits(self.digits));
        }
        if !(MIN_PERIOD_S..=MAX_PERIOD_S).contains(&self.period_s) {
            return Err(PinSpecError::Period(self.period_s));
        }
        Ok(())
    }

    /// The time step `unix_s` falls in (RFC 6238 with T0 = 0). Times before 1970 are step 0.
    pub fn step_at(&self, unix_s: i64) -> u64 {
        u64::try_from(unix_s).unwrap_or(0) / u64::from(self.period_s.max(1))
    }

    /// Unix seconds at which `step` begins.
    pub fn step_start(&self, step: u64) -> i64 {
        i64::try_from(step.saturating_mul(u64::from(self.period_s))).unwrap_or(i64::MAX)
    }
}

/// A key's secret seed. Zeroed on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PinSeed(Zeroizing<Vec<u8>>);

impl PinSeed {
    pub fn new(bytes: Vec<u8>) -> Result<Self, PinSpecError> {
        if bytes.is_empty() {
            return Err(PinSpecError::EmptySeed);
        }
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// A fresh random seed of the algorithm's recommended length.
    pub fn generate(
        algorithm: PinAlgorithm,
        rng: &dyn ring::rand::SecureRandom,
    ) -> Result<Self, ring::error::Unspecified> {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.seed_len()]);
        rng.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// base64url, for the wire and for encrypted storage only.
    pub fn to_b64(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::encoding::b64(&self.0))
    }

    pub fn from_b64(text: &str) -> Option<Self> {
        crate::encoding::unb64(text).and_then(|b| Self::new(b).ok())
    }
}

impl fmt::Debug for PinSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinSeed(<{} bytes>)", self.0.len())
    }
}

/// RFC 4226 HOTP: HMAC over the 8-byte big-endian counter, dynamic truncation to 31 bits,
/// modulo 10^digits. `digits` must be 1 to 10.
pub fn hotp(seed: &PinSeed, algorithm: PinAlgorithm, counter: u64, digits: u8) -> u32 {
    let key = hmac::Key::new(algorithm.hmac(), seed.as_bytes());
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    let digits = u32::from(digits.clamp(1, MAX_DIGITS));
    if digits >= 10 {
        binary
    } else {
        binary % 10u32.pow(digits)
    }
}

/// The code of `step`, zero-padded to the key's digits.
pub fn code_at_step(seed: &PinSeed, spec: &PinSpec, step: u64) -> String {
    let value = hotp(seed, spec.algorithm, step, spec.digits);
    format!("{value:0width$}", width = usize::from(spec.digits))
}

/// RFC 6238 TOTP at `unix_s` (T0 = 0), zero-padded.
pub fn totp(seed: &PinSeed, spec: &PinSpec, unix_s: i64) -> String {
    code_at_step(seed, spec, spec.step_at(unix_s))
}

/// A key's place on a keypad, 1 to 495; typed as three digits before the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "u16", into = "u16")]
pub struct KeypadSlot(u16);

impl KeypadSlot {
    pub fn new(slot: u16) -> Result<Self, PinSpecError> {
        if (1..=MAX_SLOT).contains(&slot) {
            Ok(Self(slot))
        } else {
            Err(PinSpecError::Slot(u32::from(slot)))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The three digits the operator types first.
    pub fn prefix(self) -> String {
        format!("{:03}", self.0)
    }
}

impl TryFrom<u16> for KeypadSlot {
    type Error = PinSpecError;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<KeypadSlot> for u16 {
    fn from(slot: KeypadSlot) -> u16 {
        slot.0
    }
}

impl fmt::Display for KeypadSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix())
    }
}

/// The Rolling PIN to show for one instant.
#[derive(Clone, PartialEq, Eq)]
pub struct RollingPin {
    /// What the operator types: slot prefix then code (9 to 13 digits).
    pub pin: Zeroizing<String>,
    /// The time step the code belongs to.
    pub step: u64,
    /// Unix seconds: when this PIN first shows.
    pub valid_from: i64,
    /// Unix seconds: when the phone shows the next PIN.
    pub valid_until: i64,
    /// Unix seconds: the last instant (exclusive) a keypad on the right time still accepts
    /// it (one step of tolerance after `valid_until`).
    pub accepted_until: i64,
}

impl fmt::Debug for RollingPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingPin")
            .field("pin", &"<redacted>")
            .field("step", &self.step)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("accepted_until", &self.accepted_until)
            .finish()
    }
}

/// The PIN a phone shows at `unix_s` for the key in `slot`.
pub fn rolling_pin(seed: &PinSeed, spec: &PinSpec, slot: KeypadSlot, unix_s: i64) -> RollingPin {
    let step = spec.step_at(unix_s);
    let valid_from = spec.step_start(step);
    let valid_until = spec.step_start(step + 1);
    let accepted_until = spec.step_start(step + 1 + ACCEPTED_SKEW_STEPS);
    let mut pin = Zeroizing::new(slot.prefix());
    pin.push_str(&code_at_step(seed, spec, step));
    RollingPin {
        pin,
        step,
        valid_from,
        valid_until,
        accepted_until,
    }
}

/// The step of the ±1 window (`keypad_step − 1 ..= keypad_step + 1`) whose code is `code`,
/// if any; the latest, should two steps share a code (about 1 in 10^digits), so that a
/// keypad refusing steps it already accepted never refuses a fresh PIN for an older twin.
/// A code of the wrong length never matches.
pub fn matching_step(seed: &PinSeed, spec: &PinSpec, code: &str, keypad_unix_s: i64) -> Option<u64> {
    if code.len() != usize::from(spec.digits) {
        return None;
    }
    let here = spec.step_at(keypad_unix_s);
    let first = here.saturating_sub(ACCEPTED_SKEW_STEPS);
    (first..=here + ACCEPTED_SKEW_STEPS).rev().find(|&step| {
        let expected = code_at_step(seed, spec, step);
        same_digits(expected.as_bytes(), code.as_bytes())
    })
}

/// Compares two equally long codes without stopping at the first difference.
fn same_digits(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What someone typed on a keypad, told apart by length.
#[derive(Clone, PartialEq, Eq)]
pub enum KeypadEntry {
    /// 9 to 13 digits: slot prefix then a rolling code.
    Rolling {
        slot: KeypadSlot,
        code: Zeroizing<String>,
    },
    /// 4 to 8 digits.
    Static(Zeroizing<String>),
}

impl fmt::Debug for KeypadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeypadEntry::Rolling { slot, .. } => write!(f, "Rolling {{ slot: {slot}, code: <redacted> }}"),
            KeypadEntry::Static(_) => f.write_str("Static(<redacted>)"),
        }
    }
}

/// Why a keypad entry cannot be a PIN at all (no key is consulted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeypadEntryError {
    #[error("a PIN is digits only")]
    NotDigits,
    #[error(
        "a PIN is {STATIC_PIN_MIN_DIGITS}–{STATIC_PIN_MAX_DIGITS} digits (static) or 9–13 digits (rolling), not {0}"
    )]
    Length(usize),
    #[error("no keypad slot {0:03}: slots run from 001 to 495")]
    NoSuchSlot(u16),
}

impl KeypadEntry {
    /// Reads typed digits (spaces and dashes, as a phone may group them, are ignored).
    pub fn parse(typed: &str) -> Result<Self, KeypadEntryError> {
        let digits: Zeroizing<String> =
            Zeroizing::new(typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KeypadEntryError::NotDigits);
        }
        let n = digits.len();
        if (STATIC_PIN_MIN_DIGITS..=STATIC_PIN_MAX_DIGITS).contains(&n) {
            return Ok(KeypadEntry::Static(digits));
        }
        let rolling_min = SLOT_DIGITS + usize::from(MIN_DIGITS);
        let rolling_max = SLOT_DIGITS + usize::from(MAX_DIGITS);
        if !(rolling_min..=rolling_max).contains(&n) {
            return Err(KeypadEntryError::Length(n));
        }
        let slot: u16 = digits[..SLOT_DIGITS]
            .parse()
            .map_err(|_| KeypadEntryError::NotDigits)?;
        let slot = KeypadSlot::new(slot).map_err(|_| KeypadEntryError::NoSuchSlot(slot))?;
        Ok(KeypadEntry::Rolling {
            slot,
            code: Zeroizing::new(digits[SLOT_DIGITS..].to_owned()),
        })
    }
}

/// Checks a static PIN an admin typed or the backend generated: 4–8 digits.
pub fn validate_static_pin(pin: &str) -> Result<(), KeypadEntryError> {
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(KeypadEntryError::NotDigits);
    }
    if !(STATIC_PIN_MIN_DIGITS..=STATIC_PIN_MAX_DIGITS).contains(&pin.len()) {
        return Err(KeypadEntryError::Length(pin.len()));
    }
    Ok(())
}

/// Upper bound of the chance that one random guess of a rolling entry is accepted by a
/// keypad: the guess must name the slot (the attacker may know it) and match one of the
/// `2·ACCEPTED_SKEW_STEPS + 1` codes of that key: `3 / 10^digits`.
pub fn false_accept_per_guess(digits: u8) -> f64 {
    (2 * ACCEPTED_SKEW_STEPS + 1) as f64 / 10f64.powi(i32::from(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(text: &[u8]) -> PinSeed {
        PinSeed::new(text.to_vec()).unwrap()
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let s = seed(b"12345678901234567890");
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(&s, PinAlgorithm::Sha1, counter as u64, 6),
                want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn a_seed_never_shows_in_debug() {
        let s = seed(b"super secret seed bytes");
        assert_eq!(format!("{s:?}"), "PinSeed(<23 bytes>)");
        let pin = rolling_pin(&s, &PinSpec::default(), KeypadSlot::new(7).unwrap(), 1_000_000);
        assert!(!format!("{pin:?}").contains(pin.pin.as_str()));
    }

    #[test]
    fn a_rolling_pin_is_the_slot_then_the_code() {
        let s = seed(b"12345678901234567890");
        let spec = PinSpec {
            algorithm: PinAlgorithm::Sha1,
            digits: 8,
            period_s: 30,
        };
        let pin = rolling_pin(&s, &spec, KeypadSlot::new(42).unwrap(), 59);
        assert_eq!(pin.pin.as_str(), "04294287082");
        assert_eq!(
            (pin.step, pin.valid_from, pin.valid_until, pin.accepted_until),
            (1, 30, 60, 90)
        );
        match KeypadEntry::parse(&pin.pin).unwrap() {
            KeypadEntry::Rolling { slot, code } => {
                assert_eq!(slot.get(), 42);
                assert_eq!(matching_step(&s, &spec, &code, 59), Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_are_told_apart_by_length() {
        assert!(matches!(KeypadEntry::parse("1234"), Ok(KeypadEntry::Static(_))));
        assert!(matches!(
            KeypadEntry::parse("12-34 5678"),
            Ok(KeypadEntry::Static(_))
        ));
        assert!(matches!(
            KeypadEntry::parse("001123456"),
            Ok(KeypadEntry::Rolling { .. })
        ));
        assert_eq!(
            KeypadEntry::parse("123").unwrap_err(),
            KeypadEntryError::Length(3)
        );
        assert_eq!(
            KeypadEntry::parse("12345678901234").unwrap_err(),
            KeypadEntryError::Length(14)
        );
        assert_eq!(
            KeypadEntry::parse("496123456").unwrap_err(),
            KeypadEntryError::NoSuchSlot(496)
        );
        assert_eq!(
            KeypadEntry::parse("000123456").unwrap_err(),
            KeypadEntryError::NoSuchSlot(0)
        );
        assert_eq!(
            KeypadEntry::parse("12a4").unwrap_err(),
            KeypadEntryError::NotDigits
        );
    }

    #[test]
    fn the_false_accept_bound_holds_for_every_allowed_length() {
        for digits in MIN_DIGITS..=MAX_DIGITS {
            assert!(false_accept_per_guess(digits) <= 1e-5, "{digits} digits");
        }
        assert!(false_accept_per_guess(5) > 1e-5);
    }

    #[test]
    fn specs_out_of_range_are_refused() {
        let ok = PinSpec::default();
        assert!(ok.validate().is_ok());
        assert_eq!(
            PinSpec { digits: 5, ..ok }.validate(),
            Err(PinSpecError::Digits(5))
        );
        assert_eq!(
            PinSpec { digits: 11, ..ok }.validate(),
            Err(PinSpecError::Digits(11))
        );
        assert_eq!(
            PinSpec { period_s: 29, ..ok }.validate(),
            Err(PinSpecError::Period(29))
        );
        assert_eq!(KeypadSlot::new(496), Err(PinSpecError::Slot(496)));
        assert_eq!("SHA-512".parse::<PinAlgorithm>(), Ok(PinAlgorithm::Sha512));
    }
}
