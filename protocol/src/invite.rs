//! Invite secrets: the token carried in the SMS link and the short code a person types
//! by hand. Both identify one single-use invite on the server; neither is ever logged.
//!
//! The short code is 10 symbols from a 31-symbol alphabet with no look-alikes (no 0, O,
//! 1, I or L) plus one check symbol: the position-weighted sum of all 11 symbols is 0
//! mod 31. Since 31 is prime and the weights differ, it catches every single mistyped
//! symbol and every swap of two symbols. It is shown as `ABCD-EFGH-JKM`; input is
//! case-insensitive and ignores spaces and dashes. 31^10 ≈ 8.2e14 codes.

use ring::rand::SecureRandom;
use std::fmt;

/// The short code alphabet: digits 2–9 and letters without I, L, O.
pub const SHORT_CODE_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const N: u32 = SHORT_CODE_ALPHABET.len() as u32;
/// Random symbols in a short code (the check symbol comes on top).
pub const SHORT_CODE_DATA_LEN: usize = 10;
/// Random bytes in an invite token.
pub const TOKEN_BYTES: usize = 16;

/// Why an invite token or short code was refused before asking the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteFormatError {
    #[error("the invite token is malformed (expected {expected} characters of base64url)", expected = token_text_len())]
    MalformedToken,
    #[error("an invite code has {expected} characters; this one has {found}", expected = SHORT_CODE_DATA_LEN + 1)]
    ShortCodeLength { found: usize },
    #[error("'{0}' is not used in invite codes (they never contain 0, O, 1, I or L)")]
    ShortCodeCharacter(char),
    #[error("the invite code has a typo: its check character does not match")]
    BadCheckCharacter,
}

const fn token_text_len() -> usize {
    (TOKEN_BYTES * 4).div_ceil(3)
}

/// The secret in an invite link. 128 random bits, base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteToken(String);

impl InviteToken {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, ring::error::Unspecified> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill(&mut bytes)?;
        Ok(Self(crate::encoding::b64(&bytes)))
    }

    pub fn parse(text: &str) -> Result<Self, InviteFormatError> {
        match crate::encoding::unb64(text) {
            Some(bytes) if bytes.len() == TOKEN_BYTES && text.len() == token_text_len() => {
                Ok(Self(text.to_owned()))
            }
            _ => Err(InviteFormatError::MalformedToken),
        }
    }

    /// The secret itself, to put in a link or a request body. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteToken(…)")
    }
}

/// The invite code typed by hand, normalised to its 11 upper-case symbols.
#[derive(Clone, PartialEq, Eq)]
pub struct ShortCode(String);

impl ShortCode {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, ring::error::Unspecified> {
        let mut symbols = Vec::with_capacity(SHORT_CODE_DATA_LEN + 1);
        let mut buf = [0u8; 32];
        while symbols.len() < SHORT_CODE_DATA_LEN {
            rng.fill(&mut buf)?;
            // Rejection sampling keeps every symbol equally likely.
            for &b in buf.iter().filter(|&&b| u32::from(b) < 256 / N * N) {
                if symbols.len() < SHORT_CODE_DATA_LEN {
                    symbols.push(u32::from(b) % N);
                }
            }
        }
        symbols.push(check_symbol(&symbols));
        Ok(Self(
            symbols
                .iter()
                .map(|&s| SHORT_CODE_ALPHABET[s as usize] as char)
                .collect(),
        ))
    }

    /// Parses what a person typed: any case, spaces and dashes ignored.
    pub fn parse(input: &str) -> Result<Self, InviteFormatError> {
        let mut symbols = Vec::with_capacity(SHORT_CODE_DATA_LEN + 1);
        for c in input.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')) {
            let upper = c.to_ascii_uppercase();
            let index = SHORT_CODE_ALPHABET
                .iter()
                .position(|&a| a as char == upper)
                .ok_or(InviteFormatError::ShortCodeCharacter(c))?;
            symbols.push(index as u32);
        }
        if symbols.len() != SHORT_CODE_DATA_LEN + 1 {
            return Err(InviteFormatError::ShortCodeLength { found: symbols.len() });
        }
        let (data, check) = symbols.split_at(SHORT_CODE_DATA_LEN);
        if check_symbol(data) != check[0] {
            return Err(InviteFormatError::BadCheckCharacter);
        }
        Ok(Self(
            symbols
                .iter()
                .map(|&s| SHORT_CODE_ALPHABET[s as usize] as char)
                .collect(),
        ))
    }

    /// The normalised code (11 symbols, no dashes). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The code grouped for reading aloud or typing: `ABCD-EFGH-JKM`.
    pub fn display(&self) -> String {
        let s = &self.0;
        format!("{}-{}-{}", &s[..4], &s[4..8], &s[8..])
    }

    /// True when `input` could be a short code rather than a link (no `/` or `:`).
    pub fn looks_like_code(input: &str) -> bool {
        let t = input.trim();
        !t.is_empty() && !t.contains('/') && !t.contains(':')
    }
}

impl fmt::Debug for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShortCode(…)")
    }
}

/// The check symbol over `data` (symbol indices): data symbol `i` weighs `i + 2`, the
/// check symbol weighs 1, and the weighted sum of all is 0 mod 31.
fn check_symbol(data: &[u32]) -> u32 {
    let sum: u32 = data
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32 + 2) * s % N)
        .sum();
    (N - sum % N) % N
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    #[test]
    fn generated_codes_parse_back_in_any_case_and_grouping() {
        let rng = SystemRandom::new();
        for _ in 0..200 {
            let code = ShortCode::generate(&rng).unwrap();
            assert_eq!(code.expose().len(), 11);
            let typed = code.display().to_lowercase();
            assert_eq!(ShortCode::parse(&typed).unwrap(), code);
            let spaced: String = code.expose().chars().flat_map(|c| [c, ' ']).collect();
            assert_eq!(ShortCode::parse(&spaced).unwrap(), code);
        }
    }

    #[test]
    fn look_alike_characters_are_refused_by_name() {
        assert_eq!(
            ShortCode::parse("ABCD-EFGH-J0M"),
            Err(InviteFormatError::ShortCodeCharacter('0'))
        );
        assert_eq!(
            ShortCode::parse("ABCD-EFGH-JOM"),
            Err(InviteFormatError::ShortCodeCharacter('O'))
        );
        assert_eq!(
            ShortCode::parse("ABCD-EFGH"),
            Err(InviteFormatError::ShortCodeLength { found: 8 })
        );
    }

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let t = InviteToken::generate(&SystemRandom::new()).unwrap();
        assert_eq!(InviteToken::parse(t.expose()).unwrap(), t);
        assert_eq!(
            InviteToken::parse("short"),
            Err(InviteFormatError::MalformedToken)
        );
        assert_eq!(
            InviteToken::parse("!!!!!!!!!!!!!!!!!!!!!!"),
            Err(InviteFormatError::MalformedToken)
        );
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    fn any_code() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0..N, SHORT_CODE_DATA_LEN).prop_map(|mut d| {
            let c = check_symbol(&d);
            d.push(c);
            d
        })
    }

    fn render(symbols: &[u32]) -> String {
        symbols
            .iter()
            .map(|&s| SHORT_CODE_ALPHABET[s as usize] as char)
            .collect()
    }

    proptest! {
        #[test]
        fn every_single_typo_is_caught(code in any_code(), pos in 0..SHORT_CODE_DATA_LEN + 1, delta in 1..N) {
            let mut typo = code.clone();
            typo[pos] = (typo[pos] + delta) % N;
            prop_assert_eq!(ShortCode::parse(&render(&typo)), Err(InviteFormatError::BadCheckCharacter));
        }

        #[test]
        fn every_swap_of_two_symbols_is_caught(code in any_code(), a in 0..SHORT_CODE_DATA_LEN + 1, b in 0..SHORT_CODE_DATA_LEN + 1) {
            prop_assume!(code[a] != code[b]);
            let mut swapped = code.clone();
            swapped.swap(a, b);
            prop_assert_eq!(ShortCode::parse(&render(&swapped)), Err(InviteFormatError::BadCheckCharacter));
        }
    }
}
