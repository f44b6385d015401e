use super::*;
use fake::{Fault, OPERATOR};
use opkey_core::Error;
use opkey_protocol::api::{ErrorCode, RedeemRequest};

#[tokio::test]
async fn an_operator_enrolls_by_opening_the_sms_link() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    assert!(!op.status().unwrap().enrolled);
    let (link, _) = fake.invite(OPERATOR);

    let enrollment = op.redeem_invite(&format!("  {link}/ ")).await.unwrap();
    assert_eq!(enrollment.operator.id, OPERATOR);
    assert_eq!(enrollment.organizations[0].name, "Acme Rental");
    assert_eq!(enrollment.server_url, fake.url);

    let status = op.status().unwrap();
    assert!(status.enrolled && !status.revoked && !status.pending_invite);
    assert_eq!(status.phone_id.as_deref(), Some(enrollment.phone_id.as_str()));
    assert_eq!(status.server_url.as_ref(), Some(&fake.url));
    assert_eq!(status.server_offset_ms, Some(0));
    assert_eq!(status.clock_warning, None);

    // The request proved possession of the phone key and named the device.
    let sent: RedeemRequest = serde_json::from_str(&fake.requests_to("/v1/invites/redeem")[0].body).unwrap();
    assert_eq!(sent.device_name, "Test phone");
    assert!(sent.code.is_none() && sent.token.is_some());
}

#[tokio::test]
async fn a_short_code_on_a_fresh_install_needs_to_know_the_server() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (_, code) = fake.invite(OPERATOR);
    let err = op.redeem_invite(&code.display()).await.unwrap_err();
    assert_eq!(err, Error::ServerUnknown);
    assert!(
        err.to_string()
            .starts_with("a short code needs to know the server")
    );
    assert!(fake.requests_to("/").is_empty());

    // With the server configured (the mobile apps), the same code enrolls.
    let mut config = phone.config();
    config.server_url = Some(fake.url.clone());
    drop(op);
    let op = phone.open_with(config);
    let enrollment = op.redeem_invite(&code.display().to_lowercase()).await.unwrap();
    assert_eq!(enrollment.server_url, fake.url);
    let sent: RedeemRequest = serde_json::from_str(&fake.requests_to("/v1/invites/redeem")[0].body).unwrap();
    assert_eq!(sent.code.as_deref(), Some(code.expose()));
}

#[tokio::test]
async fn a_short_code_after_an_earlier_enrollment_uses_the_remembered_server() {
    let (fake, _phone, op) = enrolled().await;
    let (_, code) = fake.invite("op_bob");
    let enrollment = op.redeem_invite(&code.display()).await.unwrap();
    assert_eq!(enrollment.operator.id, "op_bob");
    assert_eq!(enrollment.server_url, fake.url);
}

#[tokio::test]
async fn the_servers_verdict_on_an_invite_becomes_an_error_the_app_can_act_on() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (link, _) = fake.invite(OPERATOR);
    for (code, expected) in [
        (ErrorCode::InviteNotFound, Error::InviteNotFound),
        (ErrorCode::InviteExpired, Error::InviteExpired),
        (ErrorCode::InviteUsed, Error::InviteAlreadyUsed),
        (ErrorCode::InviteRevoked, Error::InviteRevoked),
        (ErrorCode::TooManyRequests, Error::TooManyAttempts),
    ] {
        fake.fault("/v1/invites/redeem", Fault::Code(410, code));
        assert_eq!(op.redeem_invite(&link).await.unwrap_err(), expected);
    }
    // A 4xx is never retried.
    assert_eq!(fake.requests_to("/v1/invites/redeem").len(), 5);
    assert!(!op.status().unwrap().enrolled);
}

#[tokio::test]
async fn an_invite_redeemed_by_another_phone_is_refused() {
    let (fake, phone) = backend_and_phone().await;
    let (link, _) = fake.invite(OPERATOR);
    phone.open().redeem_invite(&link).await.unwrap();
    let other = Phone::new(phone.clock.clone());
    assert_eq!(
        other.open().redeem_invite(&link).await.unwrap_err(),
        Error::InviteAlreadyUsed
    );
}

#[tokio::test]
async fn a_redeem_whose_answer_was_lost_is_retried_with_the_same_phone_key() {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (link, _) = fake.invite(OPERATOR);
    fake.fault("/v1/invites/redeem", Fault::LoseResponse);

    let enrollment = op.redeem_invite(&link).await.unwrap();

    let sent = fake.requests_to("/v1/invites/redeem");
    assert_eq!(sent.len(), 2);
    let key = |i: usize| {
        serde_json::from_str::<RedeemRequest>(&sent[i].body)
            .unwrap()
            .phone_public_key
    };
    assert_eq!(key(0), key(1));
    assert_eq!(fake.with(|s| s.phones.len()), 1);
    assert_eq!(fake.with(|s| s.phones[0].id.clone()), enrollment.phone_id);
}

#[tokio::test]
async fn an_interrupted_redeem_is_finished_later_with_the_same_key_even_after_a_restart() {
    let (fake, phone) = backend_and_phone().await;
    let (link, _) = fake.invite(OPERATOR);
    fake.sticky_fault("/v1/invites/redeem", Fault::LoseResponse);
    {
        let op = phone.open();
        let err = op.redeem_invite(&link).await.unwrap_err();
        assert!(matches!(err, Error::Network { .. }), "{err:?}");
        assert!(err.to_string().contains("your keys still work offline"));
        assert!(op.status().unwrap().pending_invite);
    }
    fake.clear_faults();

    // The app restarts and finishes what it started.
    let op = phone.open();
    assert!(op.status().unwrap().pending_invite);
    let enrollment = op.resume_redeem().await.unwrap();
    assert_eq!(enrollment.operator.id, OPERATOR);
    let status = op.status().unwrap();
    assert!(status.enrolled && !status.pending_invite);

    let keys: Vec<String> = fake
        .requests_to("/v1/invites/redeem")
        .iter()
        .map(|r| {
            serde_json::from_str::<RedeemRequest>(&r.body)
                .unwrap()
                .phone_public_key
        })
        .collect();
    assert!(keys.len() >= 4);
    assert!(keys.iter().all(|k| *k == keys[0]));
    assert_eq!(op.resume_redeem().await.unwrap_err(), Error::NotEnrolled);
}

#[tokio::test]
async fn enrolling_as_another_operator_clears_the_previous_operators_keys() {
    let (fake, _phone, op) = enrolled().await;
    fake.add_machine("m1", "Excavator");
    fake.put_key("k1", OPERATOR, &["m1"], T0, T0 + time::Duration::days(30));
    op.sync().await.unwrap();
    assert_eq!(op.keys().unwrap().len(), 1);

    // Same operator again: keys stay.
    let (link, _) = fake.invite(OPERATOR);
    fake.with(|s| s.invites.values_mut().for_each(|i| i.redeemed_by = None));
    op.redeem_invite(&link).await.unwrap();
    assert_eq!(op.keys().unwrap().len(), 1);

    let (link, _) = fake.invite("op_bob");
    op.redeem_invite(&link).await.unwrap();
    assert!(op.keys().unwrap().is_empty());
    let status = op.status().unwrap();
    assert_eq!(status.operator.unwrap().id, "op_bob");
    assert_eq!((status.cursor, status.last_sync_at), (0, None));
}
