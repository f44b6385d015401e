use super::*;
use opkey_core::{InviteError, InviteForm};
use opkey_protocol::invite::{InviteToken, ShortCode};
use ring::rand::SystemRandom;

#[test]
fn every_invite_form_parses_without_the_network() {
    let phone = Phone::new(manual(T0));
    let op = phone.open();
    let rng = SystemRandom::new();
    let token = InviteToken::generate(&rng).unwrap();
    let code = ShortCode::generate(&rng).unwrap();

    let link = op
        .parse_invite(&format!("https://invite.opkey.example/i/{}", token.expose()))
        .unwrap();
    assert_eq!(link.form, InviteForm::Link);
    assert_eq!(
        link.server_url.as_ref().unwrap().as_str(),
        "https://invite.opkey.example/"
    );

    let custom = op
        .parse_invite(&format!("opkey://invite/{}", token.expose()))
        .unwrap();
    assert_eq!(
        (custom.form, &custom.server_url),
        (InviteForm::CustomScheme, &None)
    );

    let typed = op.parse_invite(&code.display()).unwrap();
    assert_eq!((typed.form, &typed.server_url), (InviteForm::ShortCode, &None));

    // Nothing the app may print holds the secret.
    for parsed in [&link, &custom, &typed] {
        let shown = format!("{parsed:?} {}", serde_json::to_string(parsed).unwrap());
        assert!(
            !shown.contains(token.expose()) && !shown.contains(code.expose()),
            "{shown}"
        );
    }
}

#[test]
fn bad_links_are_refused_each_with_its_own_reason() {
    let phone = Phone::new(manual(T0));
    let mut strict = phone.config();
    strict.allow_loopback_invites = false;
    let op = phone.open_with(strict);
    let token = InviteToken::generate(&SystemRandom::new()).unwrap();
    let t = token.expose();
    let cases = [
        (
            format!("ftp://invite.opkey.example/i/{t}"),
            InviteError::WrongScheme { scheme: "ftp".into() },
        ),
        (
            format!("http://invite.opkey.example/i/{t}"),
            InviteError::WrongScheme {
                scheme: "http".into(),
            },
        ),
        (
            format!("https://phish.example/i/{t}"),
            InviteError::ForeignHost {
                host: "phish.example".into(),
            },
        ),
        (
            "https://invite.opkey.example/i/AAAA".to_owned(),
            InviteError::MalformedToken,
        ),
        (
            "https://invite.opkey.example/welcome".to_owned(),
            InviteError::MalformedLink,
        ),
        ("ABCD-EFGH-JKL".to_owned(), InviteError::ShortCodeCharacter('L')),
        (
            format!("http://127.0.0.1:4000/i/{t}"),
            InviteError::LoopbackNotAllowed {
                host: "127.0.0.1".into(),
            },
        ),
        (
            format!("https://localhost/i/{t}"),
            InviteError::LoopbackNotAllowed {
                host: "localhost".into(),
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(op.parse_invite(&input), Err(expected), "{input}");
    }
    let code = ShortCode::generate(&SystemRandom::new()).unwrap();
    let mut typo: Vec<char> = code.expose().chars().collect();
    typo.swap(0, 1);
    if typo[0] != typo[1] {
        let typo: String = typo.into_iter().collect();
        assert_eq!(op.parse_invite(&typo), Err(InviteError::BadCheckCharacter));
    }
}

#[test]
fn error_messages_tell_the_person_what_to_do_and_never_echo_the_token() {
    let phone = Phone::new(manual(T0));
    let op = phone.open();
    let token = InviteToken::generate(&SystemRandom::new()).unwrap();
    let err = op
        .parse_invite(&format!("https://phish.example/i/{}", token.expose()))
        .unwrap_err();
    let text = opkey_core::Error::from(err).to_string();
    assert!(text.contains("open the link from your SMS"), "{text}");
    assert!(!text.contains(token.expose()));
}
