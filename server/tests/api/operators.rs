use crate::common::*;
use opkey_protocol::Organization;
use opkey_protocol::api::{ErrorCode, InviteStatus, OperatorView, SmsMessage};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_operator_created_without_invite_gets_no_sms() {
    let server = start().await;
    let view = server
        .create_operator("  Ann Operator ", "+45 12 34 56 78", false)
        .await;
    assert_eq!(view.operator.name, "Ann Operator");
    assert_eq!(view.operator.phone.as_str(), "+4512345678");
    assert!(view.operator.id.starts_with("opr_"));
    assert!(!view.operator.enrolled);
    assert!(view.invite.is_none());
    let outbox: Vec<SmsMessage> = server.get("/sms").await.expect(200);
    assert!(outbox.is_empty());
    let listed: Vec<OperatorView> = server.get("/operators").await.expect(200);
    assert_eq!(listed, vec![view]);
    server.stop().await;
}

#[tokio::test]
async fn an_operator_created_with_invite_gets_an_sms_with_link_and_code() {
    let server = start().await;
    let view = server.create_operator("Ann", "+4512345678", true).await;
    let invite = view.invite.expect("an invite");
    assert_eq!(invite.status, InviteStatus::Pending);
    assert_eq!(invite.expires_at, START + time::Duration::days(7));

    let sms = server.last_sms().await;
    assert_eq!(Some(&sms.id), invite.sms_id.as_ref());
    assert_eq!(sms.recipient.as_str(), "+4512345678");
    assert!(
        sms.body.starts_with("Hi Ann, Acme Rental has invited you"),
        "{}",
        sms.body
    );
    let (token, code) = invite_secrets(&sms.body);
    assert!(
        sms.body.contains(&server.url(&format!("/i/{token}"))),
        "{}",
        sms.body
    );
    opkey_protocol::invite::InviteToken::parse(&token).unwrap();
    let parsed = opkey_protocol::invite::ShortCode::parse(&code).unwrap();
    assert_eq!(parsed.display(), code, "the code is shown grouped");
    assert!(sms.body.contains("Expires 2026-01-12 09:00 UTC."), "{}", sms.body);
    server.stop().await;
}

#[tokio::test]
async fn invite_links_use_the_configured_base_url() {
    let server = start_with(|c| {
        c.invite_base_url = Some("https://opkey.example/app/".parse().unwrap());
    })
    .await;
    server.create_operator("Ann", "+4512345678", true).await;
    let body = server.last_sms().await.body;
    assert!(body.contains("https://opkey.example/app/i/"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_phone_already_in_another_organization_joins_as_the_same_operator() {
    let server = start().await;
    let first = server.create_operator("Ann", "+4512345678", false).await;
    let other: Organization = server
        .post("/organizations", json!({"name": "Build Co"}))
        .await
        .expect(201);
    let in_other = |body| {
        server
            .client
            .post(server.url("/admin/v1/operators"))
            .bearer_auth(ADMIN_TOKEN)
            .header("x-opkey-organization", &other.id)
            .json(&body)
    };
    let joined: OperatorView = server
        .send(in_other(json!({"name": "Ann B.", "phone": "0045 1234 5678"})))
        .await
        .expect(201);
    assert_eq!(joined.operator.id, first.operator.id);
    assert_eq!(joined.operator.name, "Ann", "the person keeps their name");
    assert_eq!(joined.operator.organization_ids.len(), 2);
    assert!(joined.operator.organization_ids.contains(&other.id));

    let message = server
        .send(in_other(json!({"name": "Ann", "phone": "+4512345678"})))
        .await
        .error(409, ErrorCode::Conflict);
    assert!(message.contains(&first.operator.id), "{message}");

    // A user of the other organization sees only their own organization in the view.
    let user: opkey_protocol::api::AdminUserCreated = server
        .post(
            "/users",
            json!({"name": "Bea", "role": "admin", "organization_id": other.id}),
        )
        .await
        .expect(201);
    let seen: OperatorView = server
        .call(
            Method::GET,
            &format!("/admin/v1/operators/{}", first.operator.id),
            Some(&user.token),
            None,
        )
        .await
        .expect(200);
    assert_eq!(seen.operator.organization_ids, vec![other.id.clone()]);
    server.stop().await;
}

#[tokio::test]
async fn names_and_phones_are_checked_with_the_field_named() {
    let server = start().await;
    let message = server
        .post("/operators", json!({"name": "  ", "phone": "+4512345678"}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("name:"), "{message}");
    let message = server
        .post("/operators", json!({"name": "Ann", "phone": "12345678"}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(
        message.starts_with("phone:") && message.contains("country code"),
        "{message}"
    );
    let long = "x".repeat(201);
    server
        .post("/operators", json!({"name": long, "phone": "+4512345678"}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    server.stop().await;
}

#[tokio::test]
async fn editing_an_operator_changes_the_fields_given_and_refuses_a_taken_phone() {
    let server = start().await;
    let ann = server.create_operator("Ann", "+4512345678", false).await;
    server.create_operator("Bob", "+4512345679", false).await;
    let path = format!("/operators/{}", ann.operator.id);
    let edited: OperatorView = server
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"name": "Ann Smith", "access_type": "rolling-pin"})),
        )
        .await
        .expect(200);
    assert_eq!(edited.operator.name, "Ann Smith");
    assert_eq!(edited.operator.phone.as_str(), "+4512345678");
    assert_eq!(
        edited.operator.access_type,
        Some(opkey_protocol::AccessType::RollingPin)
    );
    server
        .admin(Method::PATCH, &path, Some(json!({"phone": "+45 12 34 56 79"})))
        .await
        .error(409, ErrorCode::Conflict);
    server
        .admin(
            Method::PATCH,
            "/operators/opr_unknown",
            Some(json!({"name": "X"})),
        )
        .await
        .error(404, ErrorCode::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn deleting_the_last_membership_deletes_the_operator() {
    let server = start().await;
    let ann = server.create_operator("Ann", "+4512345678", true).await;
    let path = format!("/operators/{}", ann.operator.id);
    let gone = server.admin(Method::DELETE, &path, None).await;
    assert_eq!(gone.status.as_u16(), 204);
    server.get(&path).await.error(404, ErrorCode::NotFound);
    // The phone number is free again: a new person record.
    let again = server.create_operator("Ann", "+4512345678", false).await;
    assert_ne!(again.operator.id, ann.operator.id);
    server.stop().await;
}
