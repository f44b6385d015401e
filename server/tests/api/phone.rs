use crate::common::*;
use opkey_protocol::api::{
    ErrorCode, InviteStatus, InviteSummary, OperatorView, RedeemResponse, SyncResponse,
};
use opkey_protocol::{Key, Organization};
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;

async fn redeem(server: &TestServer, request: &opkey_protocol::api::RedeemRequest) -> Answer {
    server
        .call(
            Method::POST,
            "/v1/invites/redeem",
            None,
            Some(serde_json::to_value(request).unwrap()),
        )
        .await
}

async fn personal_key(server: &TestServer, operator_id: &str, machine: &str) -> Key {
    server
        .post(
            "/keys",
            json!({
                "operator_id": operator_id,
                "machine_ids": [machine],
                "access_type": "digital-key",
                "valid_from": START.format(&Rfc3339).unwrap(),
                "valid_to": (START + Duration::days(30)).format(&Rfc3339).unwrap(),
            }),
        )
        .await
        .expect(201)
}

#[tokio::test]
async fn an_operator_redeems_the_invite_link_and_syncs_their_keys() {
    let server = start().await;
    let op = server.create_operator("Ann", "+4512345678", true).await;
    let machine = server.create_machine("Excavator 7").await;
    let key = personal_key(&server, &op.operator.id, &machine).await;
    let (token, _) = invite_secrets(&server.last_sms().await.body);

    let phone = Phone::new();
    let redeemed: RedeemResponse = redeem(&server, &phone.redeem_with_token(&token))
        .await
        .expect(200);
    assert!(redeemed.phone_id.starts_with("phn_"));
    assert_eq!(redeemed.operator.id, op.operator.id);
    assert_eq!(redeemed.organizations.len(), 1);
    assert_eq!(redeemed.organizations[0].name, "Acme Rental");
    assert_eq!(redeemed.server_time, START);

    let view: OperatorView = server
        .get(&format!("/operators/{}", op.operator.id))
        .await
        .expect(200);
    assert!(view.operator.enrolled);
    assert_eq!(view.invite.unwrap().status, InviteStatus::Redeemed);

    let access = phone.open_session(&server, &redeemed.phone_id).await;
    let synced: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert_eq!(synced.keys, vec![key]);
    assert_eq!(synced.machines.len(), 1);
    assert_eq!(synced.machines[0].id, machine);
    assert_eq!(synced.operator.name, "Ann");
    assert!(!synced.has_more);
    assert!(synced.cursor > 0);
    server.stop().await;
}

#[tokio::test]
async fn an_invite_can_be_redeemed_by_typing_the_short_code() {
    let server = start().await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (_, code) = invite_secrets(&server.last_sms().await.body);
    let typed = code.replace('-', " ").to_lowercase();
    let phone = Phone::new();
    let redeemed: RedeemResponse = redeem(&server, &phone.redeem_with_code(&typed)).await.expect(200);
    assert_eq!(redeemed.operator.phone.as_str(), "+4512345678");

    // A code with a typo never reaches the database.
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let mut request = phone.redeem_with_code(&code);
    request.code = Some(typo);
    let message = redeem(&server, &request)
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("code:"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn a_lost_redeem_response_can_be_retried_but_another_phone_cannot_reuse_the_invite() {
    let server = start().await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (token, _) = invite_secrets(&server.last_sms().await.body);
    let phone = Phone::new();
    let first: RedeemResponse = redeem(&server, &phone.redeem_with_token(&token))
        .await
        .expect(200);
    let again: RedeemResponse = redeem(&server, &phone.redeem_with_token(&token))
        .await
        .expect(200);
    assert_eq!(again.phone_id, first.phone_id);

    let thief = Phone::new();
    redeem(&server, &thief.redeem_with_token(&token))
        .await
        .error(409, ErrorCode::InviteUsed);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_invite_is_refused() {
    let server = start().await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (token, _) = invite_secrets(&server.last_sms().await.body);
    server.clock.advance(Duration::days(7));
    let phone = Phone::new();
    redeem(&server, &phone.redeem_with_token(&token))
        .await
        .error(410, ErrorCode::InviteExpired);
    server.stop().await;
}

#[tokio::test]
async fn a_re_invite_revokes_the_old_invite_and_the_enrolled_phone() {
    let server = start().await;
    let (op_id, old_phone, old_phone_id, old_access) = enrolled_operator(&server, "Ann", "+4512345678").await;

    // A second pending invite would also be withdrawn.
    let pending: InviteSummary = server
        .post(&format!("/operators/{op_id}/invite"), json!({}))
        .await
        .expect(201);
    let (pending_token, _) = invite_secrets(&server.last_sms().await.body);
    let fresh: InviteSummary = server
        .post(&format!("/operators/{op_id}/invite"), json!({}))
        .await
        .expect(201);
    assert_ne!(fresh.id, pending.id);
    assert!(fresh.sms_id.is_some());
    let (fresh_token, _) = invite_secrets(&server.last_sms().await.body);

    let new_phone = Phone::new();
    redeem(&server, &new_phone.redeem_with_token(&pending_token))
        .await
        .error(410, ErrorCode::InviteRevoked);
    sync(&server, &old_access, 0, None)
        .await
        .error(403, ErrorCode::PhoneRevoked);
    server
        .call(
            Method::POST,
            "/v1/session/challenge",
            None,
            Some(json!({"phone_id": old_phone_id})),
        )
        .await
        .error(403, ErrorCode::PhoneRevoked);
    drop(old_phone);

    let (_, access) = new_phone.enroll(&server, &fresh_token).await;
    sync(&server, &access, 0, None).await.expect::<SyncResponse>(200);
    server.stop().await;
}

#[tokio::test]
async fn a_redeem_needs_one_secret_and_a_signature_by_the_key_it_enrolls() {
    let server = start().await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (token, code) = invite_secrets(&server.last_sms().await.body);
    let phone = Phone::new();

    let mut both = phone.redeem_with_token(&token);
    both.code = Some(code);
    redeem(&server, &both).await.error(400, ErrorCode::InvalidRequest);
    let mut neither = phone.redeem_with_token(&token);
    neither.token = None;
    redeem(&server, &neither)
        .await
        .error(400, ErrorCode::InvalidRequest);

    // Signed by another key than the one it enrolls.
    let mut forged = phone.redeem_with_token(&token);
    forged.signature = Phone::new().sign(&opkey_protocol::auth::redeem_message(&token, &phone.public_key));
    redeem(&server, &forged).await.error(400, ErrorCode::BadSignature);

    let mut malformed = phone.redeem_with_token(&token);
    malformed.phone_public_key = "AAAA".to_owned();
    redeem(&server, &malformed)
        .await
        .error(400, ErrorCode::InvalidRequest);
    server.stop().await;
}

#[tokio::test]
async fn guessing_invites_is_throttled_per_address() {
    let server = start().await;
    server.create_operator("Ann", "+4512345678", true).await;
    let (token, _) = invite_secrets(&server.last_sms().await.body);
    let phone = Phone::new();
    let rng = ring::rand::SystemRandom::new();
    for _ in 0..10 {
        let guess = opkey_protocol::invite::InviteToken::generate(&rng).unwrap();
        redeem(&server, &phone.redeem_with_token(guess.expose()))
            .await
            .error(404, ErrorCode::InviteNotFound);
    }
    let blocked = redeem(&server, &phone.redeem_with_token(&token)).await;
    blocked.error(429, ErrorCode::TooManyRequests);
    assert_eq!(blocked.headers["retry-after"], "600");

    server.clock.advance(Duration::minutes(10));
    redeem(&server, &phone.redeem_with_token(&token))
        .await
        .expect::<RedeemResponse>(200);
    server.stop().await;
}

#[tokio::test]
async fn a_session_challenge_is_single_use_and_short_lived() {
    let owned = start().await;
    let server = &owned;
    let (_, phone, phone_id, access) = enrolled_operator(server, "Ann", "+4512345678").await;
    let challenge = |id: &str| {
        let body = json!({"phone_id": id});
        async move {
            server
                .call(Method::POST, "/v1/session/challenge", None, Some(body))
                .await
        }
    };
    let open = |challenge: &str, signature: String| {
        let body = json!({"phone_id": phone_id, "challenge": challenge, "signature": signature});
        async move { server.call(Method::POST, "/v1/session", None, Some(body)).await }
    };

    challenge("phn_unknown").await.error(404, ErrorCode::NotFound);

    let c: opkey_protocol::api::ChallengeResponse = challenge(&phone_id).await.expect(200);
    assert_eq!(c.expires_at, START + Duration::minutes(2));
    let wrong = phone.sign(b"something else");
    open(&c.challenge, wrong)
        .await
        .error(401, ErrorCode::BadSignature);
    // The challenge was spent by that attempt.
    let right = phone.sign(&opkey_protocol::auth::session_message(&phone_id, &c.challenge));
    open(&c.challenge, right)
        .await
        .error(401, ErrorCode::ChallengeExpired);

    let c: opkey_protocol::api::ChallengeResponse = challenge(&phone_id).await.expect(200);
    server.clock.advance(Duration::minutes(3));
    let right = phone.sign(&opkey_protocol::auth::session_message(&phone_id, &c.challenge));
    open(&c.challenge, right)
        .await
        .error(401, ErrorCode::ChallengeExpired);

    // The access token from enrollment has lived 3 of its 10 minutes.
    sync(server, &access, 0, None).await.expect::<SyncResponse>(200);
    server.clock.advance(Duration::minutes(8));
    sync(server, &access, 0, None)
        .await
        .error(401, ErrorCode::SessionExpired);
    sync(server, "made-up", 0, None)
        .await
        .error(401, ErrorCode::SessionExpired);
    server
        .call(Method::GET, "/v1/sync", None, None)
        .await
        .error(401, ErrorCode::SessionExpired);
    owned.stop().await;
}

#[tokio::test]
async fn sync_pages_by_cursor_and_then_returns_only_what_changed() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let bob = server.create_operator("Bob", "+4512345679", false).await;
    let m1 = server.create_machine("Excavator 7").await;
    let m2 = server.create_machine("Dumper 2").await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(personal_key(&server, &op_id, if i % 2 == 0 { &m1 } else { &m2 }).await);
    }
    personal_key(&server, &bob.operator.id, &m1).await;

    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page: SyncResponse = sync(&server, &access, cursor, Some(2)).await.expect(200);
        pages += 1;
        assert!(page.keys.len() <= 2);
        for key in &page.keys {
            assert!(page.machines.iter().any(|m| key.machine_ids.contains(&m.id)));
        }
        seen.extend(page.keys);
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, mine, "only Ann's keys, oldest change first");

    // Nothing changed: nothing comes, and the cursor stays.
    let idle: SyncResponse = sync(&server, &access, cursor, None).await.expect(200);
    assert!(idle.keys.is_empty() && idle.deleted_key_ids.is_empty() && idle.machines.is_empty());
    assert_eq!(idle.cursor, cursor);
    assert_eq!(idle.organizations.len(), 1);

    // An edit and a deletion arrive as a delta; Bob's changes never do.
    let edited: Key = server
        .admin(
            Method::PATCH,
            &format!("/keys/{}", mine[1].id),
            Some(json!({"description": "moved to site B"})),
        )
        .await
        .expect(200);
    server
        .admin(Method::DELETE, &format!("/keys/{}", mine[2].id), None)
        .await;
    personal_key(&server, &bob.operator.id, &m1).await;
    let delta: SyncResponse = sync(&server, &access, cursor, None).await.expect(200);
    assert_eq!(delta.keys, vec![edited.clone()]);
    assert_eq!(edited.version, 2);
    assert_eq!(delta.deleted_key_ids, vec![mine[2].id.clone()]);
    assert_eq!(delta.machines.len(), 1);
    assert_eq!(delta.machines[0].id, m2);
    assert!(delta.cursor > cursor);

    let message = sync(&server, &access, delta.cursor + 1000, None)
        .await
        .error(400, ErrorCode::BadCursor);
    assert!(message.contains("cursor 0"), "{message}");
    sync(&server, &access, 0, Some(0))
        .await
        .error(400, ErrorCode::InvalidRequest);
    server.stop().await;
}

#[tokio::test]
async fn removing_an_operator_from_one_organization_tombstones_only_its_keys() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let other: Organization = server
        .post("/organizations", json!({"name": "Build Co"}))
        .await
        .expect(201);
    let in_other = |method: Method, path: &str, body: Option<Value>| {
        let mut request = server
            .client
            .request(method, server.url(&format!("/admin/v1{path}")))
            .bearer_auth(ADMIN_TOKEN)
            .header("x-opkey-organization", &other.id);
        if let Some(body) = body {
            request = request.json(&body);
        }
        server.send(request)
    };
    let joined: OperatorView = in_other(
        Method::POST,
        "/operators",
        Some(json!({"name": "Ann", "phone": "+4512345678"})),
    )
    .await
    .expect(201);
    assert_eq!(joined.operator.id, op_id);
    let home_machine = server.create_machine("Excavator 7").await;
    let home_key = personal_key(&server, &op_id, &home_machine).await;
    let away_machine: Value = in_other(Method::POST, "/machines", Some(json!({"name": "Crane"})))
        .await
        .expect(201);
    let away_key: Key = in_other(
        Method::POST,
        "/keys",
        Some(json!({
            "operator_id": op_id,
            "machine_ids": [away_machine["id"]],
            "access_type": "rolling-pin",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2026-06-01T00:00:00Z",
        })),
    )
    .await
    .expect(201);

    let all: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert_eq!(all.keys.len(), 2, "keys from both organizations");
    assert_eq!(all.organizations.len(), 2);

    let removed = in_other(Method::DELETE, &format!("/operators/{op_id}"), None).await;
    assert_eq!(removed.status.as_u16(), 204);
    let delta: SyncResponse = sync(&server, &access, all.cursor, None).await.expect(200);
    assert_eq!(delta.deleted_key_ids, vec![away_key.id]);
    assert!(delta.keys.is_empty());
    assert_eq!(delta.organizations.len(), 1);
    let again: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert_eq!(again.keys, vec![home_key]);

    // Removed from the last organization: the person is gone and the phone with them.
    let gone = server
        .admin(Method::DELETE, &format!("/operators/{op_id}"), None)
        .await;
    assert_eq!(gone.status.as_u16(), 204);
    sync(&server, &access, 0, None)
        .await
        .error(403, ErrorCode::PhoneRevoked);
    server.stop().await;
}
