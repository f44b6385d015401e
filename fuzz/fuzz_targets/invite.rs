//! Fuzz target: invite links and codes, as a person pastes, taps or types them:
//! `opkey_protocol::invite::{ShortCode, InviteToken}::parse` and the phone's public
//! `OpKey::parse_invite` (the link parser itself is private to opkey-core).
//!
//! Invariants: a code that parses has 11 symbols of the alphabet, and parses back to
//! itself from its own text, its dashed display and lower case; a token that parses is
//! the canonical base64url of 16 bytes; an accepted link never points the phone at a
//! host other than the configured invite host (loopback is off here), a custom-scheme
//! link or a code carries no server; a link's server is its bare origin (no token).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_core::{CoreConfig, InviteForm, MemorySecretStore, OpKey};
use opkey_protocol::SystemClock;
use opkey_protocol::encoding::{b64, unb64};
use opkey_protocol::invite::{InviteToken, SHORT_CODE_ALPHABET, ShortCode};
use std::sync::{Arc, OnceLock};

const INVITE_HOST: &str = "invite.opkey.example";

fn phone() -> &'static OpKey {
    static PHONE: OnceLock<OpKey> = OnceLock::new();
    PHONE.get_or_init(|| {
        let mut config = CoreConfig::new(opkey_fuzz::scratch_dir("phone"));
        config.invite_hosts = vec![INVITE_HOST.to_owned()];
        OpKey::open(
            config,
            Arc::new(MemorySecretStore::new()),
            None,
            Arc::new(SystemClock),
        )
        .expect("the fuzz phone opens")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(code) = ShortCode::parse(input) {
        let text = code.expose();
        assert_eq!(text.len(), 11);
        assert!(text.bytes().all(|b| SHORT_CODE_ALPHABET.contains(&b)));
        assert_eq!(ShortCode::parse(text).as_ref(), Ok(&code));
        assert_eq!(ShortCode::parse(&code.display()).as_ref(), Ok(&code));
        assert_eq!(ShortCode::parse(&text.to_ascii_lowercase()).as_ref(), Ok(&code));
        assert!(!format!("{code:?}").contains(text));
    }

    if let Ok(token) = InviteToken::parse(input) {
        assert_eq!(token.expose(), input);
        let bytes = unb64(input).expect("a token is base64url");
        assert_eq!(bytes.len(), 16);
        assert_eq!(b64(&bytes), input, "one text per token");
        assert!(!format!("{token:?}").contains(input));
    }

    match phone().parse_invite(input) {
        Ok(parsed) => {
            match parsed.form {
                InviteForm::Link => {
                    let url = parsed.server_url.as_ref().expect("a link names its server");
                    assert_eq!(url.scheme(), "https");
                    assert!(
                        url.host_str()
                            .is_some_and(|h| h.eq_ignore_ascii_case(INVITE_HOST))
                    );
                    // Only the origin: the token (path) never leaves the parser.
                    assert_eq!(url.path(), "/");
                    assert!(url.query().is_none() && url.fragment().is_none());
                    assert!(url.username().is_empty() && url.password().is_none());
                }
                InviteForm::CustomScheme => assert!(parsed.server_url.is_none()),
                InviteForm::ShortCode => {
                    assert!(parsed.server_url.is_none());
                    ShortCode::parse(input.trim()).expect("an accepted code parses on its own");
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
