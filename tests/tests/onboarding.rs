//! An operator is invited by SMS and enrolls a phone: every form of the invite, every way
//! it can be wrong, and what happens on retries and re-invites.

use opkey_core::{Error, InviteError};
use opkey_e2e::{Backend, Phone};
use opkey_protocol::clock::ManualClock;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn operator_enrolls_from_the_sms_link_and_sees_their_organization() {
    let backend = Backend::start().await;
    let (op, invitation) = backend.invited_operator("Ola Nordmann", "+47 412 34 567").await;
    let phone = Phone::new();

    let enrollment = phone.core.redeem_invite(&invitation.link).await.expect("redeem");

    assert_eq!(enrollment.operator.id, op.operator.id);
    assert_eq!(enrollment.operator.name, "Ola Nordmann");
    assert_eq!(enrollment.organizations.len(), 1);
    let status = phone.core.status().unwrap();
    assert!(status.enrolled);
    assert_eq!(status.phone_id.as_deref(), Some(enrollment.phone_id.as_str()));
    let admin_view = backend.admin.operator(&op.operator.id).await.unwrap();
    assert!(admin_view.operator.enrolled, "the admin sees the phone enrolled");
}

#[tokio::test]
async fn operator_enrolls_with_the_custom_scheme_link() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Kari", "+47 412 00 001").await;
    let phone = Phone::for_server(backend.url());
    let custom = format!("opkey://invite/{}", invitation.token());

    phone
        .core
        .redeem_invite(&custom)
        .await
        .expect("redeem by custom scheme");
    assert!(phone.core.status().unwrap().enrolled);
}

#[tokio::test]
async fn operator_types_the_short_code_by_hand_in_lower_case() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Per", "+47 412 00 002").await;
    let phone = Phone::for_server(backend.url());

    let typed = invitation.code.to_lowercase().replace('-', " ");
    phone
        .core
        .redeem_invite(&typed)
        .await
        .expect("redeem by short code");
    assert!(phone.core.status().unwrap().enrolled);
}

#[tokio::test]
async fn a_short_code_on_a_fresh_phone_without_a_server_is_refused_clearly() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Per", "+47 412 00 003").await;
    let phone = Phone::new();
    let err = phone.core.redeem_invite(&invitation.code).await.unwrap_err();
    assert!(matches!(err, Error::ServerUnknown), "{err:?}");
}

/// Whether an invite error is the one a case expects.
type IsExpected = fn(&InviteError) -> bool;

#[tokio::test]
async fn every_malformed_link_gets_its_own_error_before_any_network() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Ola", "+47 412 00 004").await;
    let phone = Phone::new();
    let token = invitation.token().to_owned();
    let good_code = invitation.code.clone();
    let typo = {
        // Change one symbol: the check character no longer matches.
        let mut chars: Vec<char> = good_code.chars().collect();
        chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };

    let cases: Vec<(String, IsExpected)> = vec![
        (format!("ftp://127.0.0.1/i/{token}"), |e| {
            matches!(e, InviteError::WrongScheme { .. })
        }),
        (format!("http://keys.example.com/i/{token}"), |e| {
            matches!(e, InviteError::WrongScheme { .. })
        }),
        (format!("https://evil.example.net/i/{token}"), |e| {
            matches!(e, InviteError::ForeignHost { .. })
        }),
        (
            format!(
                "{}/i/{}",
                backend.url().as_str().trim_end_matches('/'),
                &token[..10]
            ),
            |e| matches!(e, InviteError::MalformedToken),
        ),
        ("opkey://invite/".to_owned(), |e| {
            matches!(e, InviteError::MalformedToken | InviteError::MalformedLink)
        }),
        (
            format!("{}/welcome/{token}", backend.url().as_str().trim_end_matches('/')),
            |e| matches!(e, InviteError::MalformedLink),
        ),
        (typo, |e| matches!(e, InviteError::BadCheckCharacter)),
        ("ABCD-EFGH".to_owned(), |e| {
            matches!(e, InviteError::ShortCodeLength { .. })
        }),
        ("ABCD-EFGH-J0M".to_owned(), |e| {
            matches!(e, InviteError::ShortCodeCharacter('0'))
        }),
    ];
    for (input, expected) in cases {
        let err = phone.core.parse_invite(&input).expect_err(&input);
        assert!(expected(&err), "{input}: got {err:?}");
        let redeem = phone.core.redeem_invite(&input).await.expect_err(&input);
        assert!(
            matches!(redeem, Error::InvalidInvite(_)),
            "{input}: got {redeem:?}"
        );
    }
    assert!(!phone.core.status().unwrap().enrolled);
}

#[tokio::test]
async fn an_invite_opened_after_seven_days_has_expired() {
    let start = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(start));
    let backend = Backend::start_with_clock(clock.clone()).await;
    let (_, invitation) = backend.invited_operator("Late Larry", "+47 412 00 005").await;
    clock.advance(Duration::days(7) + Duration::seconds(1));

    let phone = Phone::new();
    let err = phone.core.redeem_invite(&invitation.link).await.unwrap_err();
    assert!(matches!(err, Error::InviteExpired), "{err:?}");
    assert!(!phone.core.status().unwrap().enrolled);
}

#[tokio::test]
async fn an_invite_already_used_by_another_phone_is_refused() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Ola", "+47 412 00 006").await;
    Phone::new()
        .core
        .redeem_invite(&invitation.link)
        .await
        .expect("first phone enrolls");

    let second = Phone::new();
    let err = second.core.redeem_invite(&invitation.link).await.unwrap_err();
    assert!(matches!(err, Error::InviteAlreadyUsed), "{err:?}");
}

#[tokio::test]
async fn redeeming_again_from_the_same_phone_after_a_lost_answer_succeeds() {
    let backend = Backend::start().await;
    let (_, invitation) = backend.invited_operator("Ola", "+47 412 00 007").await;
    let phone = Phone::new();
    let first = phone.core.redeem_invite(&invitation.link).await.expect("first");
    // The app restarts (the answer was "lost") and the operator taps the link again.
    let phone = phone.restart();
    let second = phone.core.redeem_invite(&invitation.link).await.expect("retry");
    assert_eq!(first.phone_id, second.phone_id);
}

#[tokio::test]
async fn a_re_invite_revokes_the_old_invite_and_the_old_phone() {
    let backend = Backend::start().await;
    let (op, first_invite) = backend.invited_operator("Ola", "+47 412 00 008").await;
    let machine = backend.machine("Excavator").await;
    backend
        .personal_key(
            &op.operator.id,
            &machine.id,
            opkey_protocol::AccessType::DigitalKey,
            5,
        )
        .await;
    let old_phone = Phone::new();
    old_phone
        .core
        .redeem_invite(&first_invite.link)
        .await
        .expect("old phone enrolls");
    old_phone.core.sync().await.expect("old phone syncs");
    assert_eq!(old_phone.core.keys().unwrap().len(), 1);

    // The phone is lost: the admin re-invites.
    backend
        .admin
        .invite_operator(&op.operator.id)
        .await
        .expect("re-invite");
    let second_invite = opkey_e2e::Invitation::from_sms(&backend.latest_sms_to("+47 412 00 008").await);
    assert_ne!(first_invite.link, second_invite.link);

    let err = Phone::new()
        .core
        .redeem_invite(&first_invite.link)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InviteRevoked | Error::InviteAlreadyUsed),
        "{err:?}"
    );

    let err = old_phone.core.sync().await.unwrap_err();
    assert!(matches!(err, Error::PhoneRevoked), "{err:?}");
    assert!(
        old_phone.core.keys().unwrap().is_empty(),
        "a revoked phone keeps no keys"
    );
    assert!(!old_phone.core.status().unwrap().enrolled);

    let new_phone = Phone::new();
    new_phone
        .core
        .redeem_invite(&second_invite.link)
        .await
        .expect("new phone enrolls");
    new_phone.core.sync().await.expect("new phone syncs");
    assert_eq!(new_phone.core.keys().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_token_is_not_found_and_guessing_is_throttled() {
    let backend = Backend::start().await;
    let phone = Phone::new();
    let base = backend.url().as_str().trim_end_matches('/').to_owned();
    let mut throttled = false;
    for i in 0..12u8 {
        let fake = opkey_protocol::encoding::b64(&[i; 16]);
        match phone
            .core
            .redeem_invite(&format!("{base}/i/{fake}"))
            .await
            .unwrap_err()
        {
            Error::InviteNotFound => assert!(!throttled, "not-found after throttling started"),
            Error::TooManyAttempts => throttled = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(throttled, "ten failed guesses start the throttle");
}
