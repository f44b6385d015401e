//! Identifiers and bearer secrets. Ids are a kind prefix and 16 base32 characters (80
//! random bits): `opr_k3m9…`. Tokens are 32 random bytes, base64url; only their
//! SHA-256 digest is ever stored.

use ring::rand::SecureRandom;

/// The kinds of thing the server names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Organization,
    Operator,
    Machine,
    Key,
    Invite,
    Phone,
    User,
    Sms,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Organization => "org",
            IdKind::Operator => "opr",
            IdKind::Machine => "mch",
            IdKind::Key => "key",
            IdKind::Invite => "inv",
            IdKind::Phone => "phn",
            IdKind::User => "usr",
            IdKind::Sms => "sms",
        }
    }
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new random id of this kind.
pub fn new_id(rng: &dyn SecureRandom, kind: IdKind) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes)?;
    // 80 bits = 16 symbols of 5 bits.
    let bits = bytes.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
    let mut id = String::with_capacity(20);
    id.push_str(kind.prefix());
    id.push('_');
    for i in (0..16).rev() {
        id.push(BASE32[((bits >> (i * 5)) & 31) as usize] as char);
    }
    Ok(id)
}

/// A new bearer secret: 32 random bytes, base64url.
pub fn new_secret(rng: &dyn SecureRandom) -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes)?;
    Ok(opkey_protocol::encoding::b64(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn ids_carry_their_kind_and_sixteen_base32_characters() {
        let rng = SystemRandom::new();
        let a = new_id(&rng, IdKind::Operator).unwrap();
        let b = new_id(&rng, IdKind::Operator).unwrap();
        assert!(a.starts_with("opr_"));
        assert_eq!(a.len(), 20);
        assert!(a[4..].bytes().all(|c| BASE32.contains(&c)));
        assert_ne!(a, b);
        assert_eq!(new_secret(&rng).unwrap().len(), 43);
    }
}
