//! Reading an invite from what a person pasted, tapped or typed. No network, no store.

use super::{InviteError, InviteForm, InviteSecret, ParsedInvite};
use crate::config::CoreConfig;
use opkey_protocol::invite::{InviteToken, ShortCode};
use url::{Host, Url};

/// The custom scheme and its fixed host: `opkey://invite/<token>`.
const CUSTOM_SCHEME: &str = "opkey";
const CUSTOM_HOST: &str = "invite";
/// Path prefix of https invite links: `https://<host>/i/<token>`.
const LINK_PREFIX: &str = "/i/";

/// Parses `input` (surrounding whitespace and a trailing slash tolerated).
pub(crate) fn parse(config: &CoreConfig, input: &str) -> Result<(ParsedInvite, InviteSecret), InviteError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(InviteError::Empty);
    }
    if ShortCode::looks_like_code(text) {
        let code = ShortCode::parse(text)?;
        let parsed = ParsedInvite {
            form: InviteForm::ShortCode,
            server_url: None,
        };
        return Ok((parsed, InviteSecret::Code(code)));
    }

    let url = Url::parse(text).map_err(|_| InviteError::MalformedLink)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InviteError::MalformedLink);
    }
    match url.scheme() {
        CUSTOM_SCHEME => {
            let host_ok = url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(CUSTOM_HOST));
            if !host_ok || url.port().is_some() {
                return Err(InviteError::MalformedLink);
            }
            let token = token_after(url.path(), "/")?;
            let parsed = ParsedInvite {
                form: InviteForm::CustomScheme,
                server_url: None,
            };
            Ok((parsed, InviteSecret::Token(token)))
        }
        scheme @ ("https" | "http") => {
            check_host(config, scheme, &url)?;
            let token = token_after(url.path(), LINK_PREFIX)?;
            let origin =
                Url::parse(&url.origin().ascii_serialization()).map_err(|_| InviteError::MalformedLink)?;
            let parsed = ParsedInvite {
                form: InviteForm::Link,
                server_url: Some(origin),
            };
            Ok((parsed, InviteSecret::Token(token)))
        }
        other => Err(InviteError::WrongScheme {
            scheme: other.to_owned(),
        }),
    }
}

/// An https link on a configured invite host, or (when allowed) a loopback link over
/// http or https.
fn check_host(config: &CoreConfig, scheme: &str, url: &Url) -> Result<(), InviteError> {
    let host = url.host().ok_or(InviteError::MalformedLink)?;
    let host_text = url.host_str().unwrap_or_default().to_owned();
    if scheme == "https"
        && config
            .invite_hosts
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(&host_text))
    {
        return Ok(());
    }
    let loopback = match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    if loopback {
        return if config.allow_loopback_invites {
            Ok(())
        } else {
            Err(InviteError::LoopbackNotAllowed { host: host_text })
        };
    }
    if scheme != "https" {
        return Err(InviteError::WrongScheme {
            scheme: scheme.to_owned(),
        });
    }
    Err(InviteError::ForeignHost { host: host_text })
}

/// The token in `path` after `prefix`, one segment, trailing slash allowed.
fn token_after(path: &str, prefix: &str) -> Result<InviteToken, InviteError> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let token = path.strip_prefix(prefix).ok_or(InviteError::MalformedLink)?;
    if token.is_empty() || token.contains('/') {
        return Err(InviteError::MalformedLink);
    }
    Ok(InviteToken::parse(token)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn config() -> CoreConfig {
        let mut c = CoreConfig::new("/nonexistent");
        c.invite_hosts = vec!["Invite.OpKey.example".into()];
        c
    }

    fn token() -> InviteToken {
        InviteToken::generate(&SystemRandom::new()).unwrap()
    }

    fn err(config: &CoreConfig, input: &str) -> InviteError {
        parse(config, input).map(|_| ()).unwrap_err()
    }

    #[test]
    fn an_sms_link_on_the_invite_host_parses_with_its_origin_as_server() {
        let t = token();
        for input in [
            format!("https://invite.opkey.example/i/{}", t.expose()),
            format!("  https://INVITE.opkey.example/i/{}/ \n", t.expose()),
        ] {
            let (parsed, secret) = parse(&config(), &input).unwrap();
            assert_eq!(parsed.form, InviteForm::Link);
            assert_eq!(
                parsed.server_url.unwrap().as_str(),
                "https://invite.opkey.example/"
            );
            assert_eq!(secret, InviteSecret::Token(t.clone()));
        }
        let (parsed, _) = parse(
            &config(),
            &format!("https://invite.opkey.example:8443/i/{}", t.expose()),
        )
        .unwrap();
        assert_eq!(
            parsed.server_url.unwrap().as_str(),
            "https://invite.opkey.example:8443/"
        );
    }

    #[test]
    fn the_custom_scheme_fallback_parses_without_a_server() {
        let t = token();
        let (parsed, secret) = parse(&config(), &format!("opkey://invite/{}/", t.expose())).unwrap();
        assert_eq!(parsed.form, InviteForm::CustomScheme);
        assert_eq!(parsed.server_url, None);
        assert_eq!(secret, InviteSecret::Token(t));
    }

    #[test]
    fn a_typed_short_code_parses_in_any_case_and_grouping() {
        let code = ShortCode::generate(&SystemRandom::new()).unwrap();
        let typed = format!(" {} ", code.display().to_lowercase());
        let (parsed, secret) = parse(&config(), &typed).unwrap();
        assert_eq!(parsed.form, InviteForm::ShortCode);
        assert_eq!(secret, InviteSecret::Code(code));
    }

    #[test]
    fn each_bad_link_is_refused_with_its_own_reason() {
        let t = token();
        let c = config();
        let tok = t.expose();
        assert_eq!(err(&c, "   "), InviteError::Empty);
        assert_eq!(
            err(&c, &format!("http://invite.opkey.example/i/{tok}")),
            InviteError::WrongScheme {
                scheme: "http".into()
            }
        );
        assert_eq!(
            err(&c, &format!("ftp://invite.opkey.example/i/{tok}")),
            InviteError::WrongScheme { scheme: "ftp".into() }
        );
        assert_eq!(
            err(&c, "mailto:someone@example.com"),
            InviteError::WrongScheme {
                scheme: "mailto".into()
            }
        );
        assert_eq!(
            err(&c, &format!("https://evil.example/i/{tok}")),
            InviteError::ForeignHost {
                host: "evil.example".into()
            }
        );
        assert_eq!(
            err(&c, &format!("https://invite.opkey.example.evil.example/i/{tok}")),
            InviteError::ForeignHost {
                host: "invite.opkey.example.evil.example".into()
            }
        );
        assert_eq!(
            err(&c, &format!("http://127.0.0.1:8080/i/{tok}")),
            InviteError::LoopbackNotAllowed {
                host: "127.0.0.1".into()
            }
        );
        assert_eq!(
            err(&c, &format!("https://invite.opkey.example/x/{tok}")),
            InviteError::MalformedLink
        );
        assert_eq!(
            err(&c, "https://invite.opkey.example/i/"),
            InviteError::MalformedLink
        );
        assert_eq!(err(&c, "opkey://elsewhere/abc"), InviteError::MalformedLink);
        assert_eq!(
            err(&c, &format!("https://me@invite.opkey.example/i/{tok}")),
            InviteError::MalformedLink
        );
        assert_eq!(
            err(&c, "https://invite.opkey.example/i/short"),
            InviteError::MalformedToken
        );
        assert_eq!(err(&c, "opkey://invite/short"), InviteError::MalformedToken);
        assert_eq!(err(&c, "ABCD-EFGH"), InviteError::ShortCodeLength { found: 8 });
        assert_eq!(err(&c, "ABCD-EFGH-J0M"), InviteError::ShortCodeCharacter('0'));
    }

    #[test]
    fn a_mistyped_short_code_is_caught_by_its_check_character() {
        let code = ShortCode::generate(&SystemRandom::new()).unwrap();
        let mut chars: Vec<char> = code.expose().chars().collect();
        chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(err(&config(), &typo), InviteError::BadCheckCharacter);
    }

    #[test]
    fn loopback_links_over_http_or_https_are_accepted_in_developer_mode() {
        let t = token();
        let mut c = config();
        c.allow_loopback_invites = true;
        for (link, origin) in [
            (
                format!("http://127.0.0.1:8080/i/{}", t.expose()),
                "http://127.0.0.1:8080/",
            ),
            (
                format!("https://localhost/i/{}", t.expose()),
                "https://localhost/",
            ),
            (format!("http://[::1]:9/i/{}", t.expose()), "http://[::1]:9/"),
            (format!("http://127.1.2.3/i/{}", t.expose()), "http://127.1.2.3/"),
        ] {
            let (parsed, _) = parse(&c, &link).unwrap();
            assert_eq!(parsed.server_url.unwrap().as_str(), origin);
        }
        // Developer mode does not open plain http to other hosts.
        assert_eq!(
            err(&c, &format!("http://10.0.0.1/i/{}", t.expose())),
            InviteError::WrongScheme {
                scheme: "http".into()
            }
        );
    }

    #[test]
    fn the_pending_secret_round_trips_and_debug_hides_it() {
        let t = token();
        let secret = InviteSecret::Token(t.clone());
        assert_eq!(InviteSecret::from_bytes(&secret.to_bytes()), Some(secret.clone()));
        assert!(!format!("{secret:?}").contains(t.expose()));
        let (parsed, _) = parse(&config(), &format!("opkey://invite/{}", t.expose())).unwrap();
        assert!(!format!("{parsed:?}").contains(t.expose()));
        assert_eq!(InviteSecret::from_bytes(b"code:nope"), None);
    }
}
