//! Invites: what a person pasted, tapped or typed (`parse`), and turning it into an
//! enrollment on the backend (`redeem`).
//!
//! The invite secret (token or short code) never appears in a log line, an error, a
//! `Debug` output or the database in plaintext: while a redeem is pending it is kept
//! sealed in the store and it is cleared once the server has answered for good.

pub(crate) mod parse;
pub(crate) mod redeem;

use opkey_protocol::invite::{InviteFormatError, InviteToken, ShortCode};
use serde::Serialize;
use url::Url;
use zeroize::Zeroizing;

/// How the invite reached the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InviteForm {
    /// An `https://<invite host>/i/<token>` link (App Link / Universal Link).
    Link,
    /// The `opkey://invite/<token>` fallback link.
    CustomScheme,
    /// A code typed by hand, like `ABCD-EFGH-JKM`.
    ShortCode,
}

/// An invite that is well-formed and may be redeemed. Holds no secret: redeeming
/// parses the input again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedInvite {
    pub form: InviteForm,
    /// The origin (`scheme://host:port/`) of an https or loopback link; `None` for the
    /// custom scheme and short codes.
    pub server_url: Option<Url>,
}

/// Why an invite was refused before asking the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("nothing to redeem: paste the invite link from your SMS or type its code")]
    Empty,
    #[error(
        "invite links start with https:// (this one uses {scheme}:); open the link from your SMS as it is"
    )]
    WrongScheme { scheme: String },
    #[error("this link is not an OpKey invite (it points to {host}); open the link from your SMS")]
    ForeignHost { host: String },
    #[error("invite links to this computer ({host}) are only accepted in developer mode")]
    LoopbackNotAllowed { host: String },
    #[error("this is not an invite link: it should look like https://…/i/… or opkey://invite/…")]
    MalformedLink,
    #[error("the invite link is damaged (its token is incomplete); open it again from your SMS")]
    MalformedToken,
    #[error("an invite code has 11 characters; this one has {found}")]
    ShortCodeLength { found: usize },
    #[error("'{0}' is not used in invite codes (they never contain 0, O, 1, I or L)")]
    ShortCodeCharacter(char),
    #[error("the invite code has a typo: check each character and type it again")]
    BadCheckCharacter,
}

impl From<InviteFormatError> for InviteError {
    fn from(e: InviteFormatError) -> Self {
        match e {
            InviteFormatError::MalformedToken => InviteError::MalformedToken,
            InviteFormatError::ShortCodeLength { found } => InviteError::ShortCodeLength { found },
            InviteFormatError::ShortCodeCharacter(c) => InviteError::ShortCodeCharacter(c),
            InviteFormatError::BadCheckCharacter => InviteError::BadCheckCharacter,
        }
    }
}

/// The secret an invite carries. Its `Debug` is redacted by the protocol types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InviteSecret {
    Token(InviteToken),
    Code(ShortCode),
}

impl InviteSecret {
    /// The text signed in the redeem message and sent to the server. Never log it.
    pub(crate) fn expose(&self) -> &str {
        match self {
            InviteSecret::Token(t) => t.expose(),
            InviteSecret::Code(c) => c.expose(),
        }
    }

    /// Bytes to seal in the store while a redeem is pending.
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let (kind, text) = match self {
            InviteSecret::Token(t) => ("token:", t.expose()),
            InviteSecret::Code(c) => ("code:", c.expose()),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(kind.len() + text.len()));
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        if let Some(t) = text.strip_prefix("token:") {
            InviteToken::parse(t).ok().map(InviteSecret::Token)
        } else {
            let c = text.strip_prefix("code:")?;
            ShortCode::parse(c).ok().map(InviteSecret::Code)
        }
    }
}
