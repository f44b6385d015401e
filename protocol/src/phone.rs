//! Operator phone numbers in E.164 form (`+` country code and subscriber number, at most
//! 15 digits). Admins type numbers the way people write them; we keep one canonical form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A validated E.164 phone number, e.g. `+4512345678`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number needs a country code: start it with + (for example +45 12 34 56 78)")]
    MissingCountryCode,
    #[error("phone number may only hold digits, spaces, dashes, dots and brackets after the +")]
    InvalidCharacter,
    #[error("a country code never starts with 0")]
    CountryCodeStartsWithZero,
    #[error("phone number is too short: E.164 numbers have at least 8 digits")]
    TooShort,
    #[error("phone number is too long: E.164 numbers have at most 15 digits")]
    TooLong,
}

impl PhoneNumber {
    /// Parses a number as people write it: `+45 12 34 56 78`, `+1 (555) 010-0199`,
    /// `0045 12345678` (international `00` prefix).
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let rest = if let Some(rest) = trimmed.strip_prefix('+') {
            rest
        } else if let Some(rest) = trimmed.strip_prefix("00") {
            rest
        } else {
            return Err(PhoneError::MissingCountryCode);
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneError::InvalidCharacter),
            }
        }
        if digits.starts_with('0') {
            return Err(PhoneError::CountryCodeStartsWithZero);
        }
        if digits.len() < 8 {
            return Err(PhoneError::TooShort);
        }
        if digits.len() > 15 {
            return Err(PhoneError::TooLong);
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last two digits hidden, for logs and receipts.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        let visible = &self.0[n - 2..];
        format!("+{}{}", "•".repeat(n - 3), visible)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("E.164 phone number with country code"))
            .examples([serde_json::json!("+4512345678")])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PhoneNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_the_way_people_write_them_are_normalised() {
        assert_eq!(
            PhoneNumber::parse("+45 12 34 56 78").unwrap().as_str(),
            "+4512345678"
        );
        assert_eq!(
            PhoneNumber::parse("+1 (555) 010-0199").unwrap().as_str(),
            "+15550100199"
        );
        assert_eq!(
            PhoneNumber::parse("0044 7700 900123").unwrap().as_str(),
            "+447700900123"
        );
    }

    #[test]
    fn numbers_without_country_code_or_with_bad_length_are_refused() {
        assert_eq!(
            PhoneNumber::parse("12345678"),
            Err(PhoneError::MissingCountryCode)
        );
        assert_eq!(PhoneNumber::parse(""), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("+45 123"), Err(PhoneError::TooShort));
        assert_eq!(PhoneNumber::parse("+1234567890123456"), Err(PhoneError::TooLong));
        assert_eq!(
            PhoneNumber::parse("+045 12345678"),
            Err(PhoneError::CountryCodeStartsWithZero)
        );
        assert_eq!(
            PhoneNumber::parse("+45 1234 abcd"),
            Err(PhoneError::InvalidCharacter)
        );
    }

    #[test]
    fn debug_output_hides_the_number() {
        let n = PhoneNumber::parse("+4512345678").unwrap();
        let debug = format!("{n:?}");
        assert!(!debug.contains("12345678"), "{debug}");
        assert!(debug.ends_with("78)"));
    }
}
