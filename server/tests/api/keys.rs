use crate::common::*;
use opkey_protocol::Key;
use opkey_protocol::api::ErrorCode;
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn key_body(
    machines: &[&str],
    access_type: &str,
    card_id: Option<String>,
    valid_to: OffsetDateTime,
) -> Value {
    json!({
        "machine_ids": machines,
        "access_type": access_type,
        "valid_from": rfc3339(START - Duration::days(1)),
        "valid_to": rfc3339(valid_to),
        "card_id": card_id,
    })
}

fn year() -> OffsetDateTime {
    START + Duration::days(365)
}

#[tokio::test]
async fn a_machine_holds_at_most_495_static_pins_and_expired_ones_free_their_slot() {
    let server = start().await;
    let machine = server.create_machine("Excavator 7").await;
    let other = server.create_machine("Dumper 2").await;
    // One of them ends in an hour.
    let first: Key = server
        .post(
            "/keys",
            key_body(&[&machine], "static-pin", None, START + Duration::hours(1)),
        )
        .await
        .expect(201);
    assert_eq!(first.version, 1);
    for _ in 1..495 {
        server
            .post("/keys", key_body(&[&machine], "static-pin", None, year()))
            .await
            .expect::<Key>(201);
    }
    let message = server
        .post("/keys", key_body(&[&other, &machine], "static-pin", None, year()))
        .await
        .error(409, ErrorCode::DeviceLimitReached);
    assert_eq!(
        message,
        format!(
            "Machine 'Excavator 7' ({machine}) already holds 495 static PINs, the most one device can \
             store; delete or end another static PIN key on it first."
        )
    );
    // Other lists of the same device are not affected.
    server
        .post("/keys", key_body(&[&machine], "rolling-pin", None, year()))
        .await
        .expect::<Key>(201);
    server
        .post(
            "/keys",
            key_body(&[&machine], "key-card", Some("C-1".into()), year()),
        )
        .await
        .expect::<Key>(201);

    // Once the first key has expired it no longer counts.
    server.clock.advance(Duration::hours(2));
    server
        .post("/keys", key_body(&[&machine], "static-pin", None, year()))
        .await
        .expect::<Key>(201);
    // Extending the expired key would overfill the list again.
    server
        .admin(
            Method::PATCH,
            &format!("/keys/{}", first.id),
            Some(json!({"valid_to": rfc3339(year())})),
        )
        .await
        .error(409, ErrorCode::DeviceLimitReached);
    server.stop().await;
}

#[tokio::test]
async fn key_cards_and_primary_key_cards_share_one_list_but_ipaf_cards_have_their_own() {
    let server = start().await;
    let machine = server.create_machine("Lift 3").await;
    for i in 0..495 {
        let access_type = if i % 3 == 0 {
            "primary-key-card"
        } else {
            "key-card"
        };
        server
            .post(
                "/keys",
                key_body(&[&machine], access_type, Some(format!("K{i}")), year()),
            )
            .await
            .expect::<Key>(201);
    }
    for access_type in ["key-card", "primary-key-card"] {
        let message = server
            .post(
                "/keys",
                key_body(&[&machine], access_type, Some("NEW".into()), year()),
            )
            .await
            .error(409, ErrorCode::DeviceLimitReached);
        assert!(message.contains("495 key cards"), "{message}");
    }
    let ipaf: Key = server
        .post(
            "/keys",
            key_body(&[&machine], "ipaf-card", Some("K1".into()), year()),
        )
        .await
        .expect(201);
    assert_eq!(ipaf.card_id.as_deref(), Some("K1"));

    // Deleting one frees a slot.
    let keys: Vec<Key> = server
        .get(&format!("/keys?machine_id={machine}"))
        .await
        .expect(200);
    assert_eq!(keys.len(), 496);
    let card = keys
        .iter()
        .find(|k| k.access_type.is_card() && k.card_id.as_deref() == Some("K7"))
        .unwrap();
    let deleted = server
        .admin(Method::DELETE, &format!("/keys/{}", card.id), None)
        .await;
    assert_eq!(deleted.status.as_u16(), 204);
    server
        .post(
            "/keys",
            key_body(&[&machine], "key-card", Some("NEW".into()), year()),
        )
        .await
        .expect::<Key>(201);
    server.stop().await;
}

#[tokio::test]
async fn key_rules_are_explained_field_by_field() {
    let server = start().await;
    let machine = server.create_machine("Excavator 7").await;
    let message = server
        .post("/keys", key_body(&[&machine], "digital-key", None, year()))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("Digital Key is always personal"), "{message}");

    let message = server
        .post("/keys", key_body(&[&machine], "key-card", None, year()))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("card_id:"), "{message}");
    server
        .post(
            "/keys",
            key_body(&[&machine], "static-pin", Some("C1".into()), year()),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);
    server
        .post(
            "/keys",
            key_body(&[&machine], "key-card", Some("C".repeat(65)), year()),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);
    let message = server
        .post(
            "/keys",
            key_body(&[&machine], "static-pin", None, START - Duration::days(2)),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("valid_to"), "{message}");
    server
        .post("/keys", key_body(&[], "static-pin", None, year()))
        .await
        .error(400, ErrorCode::InvalidRequest);
    let message = server
        .post("/keys", key_body(&["mch_nope"], "static-pin", None, year()))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("mch_nope"), "{message}");

    // The same card twice on one device.
    server
        .post(
            "/keys",
            key_body(&[&machine], "key-card", Some("C-9".into()), year()),
        )
        .await
        .expect::<Key>(201);
    let message = server
        .post(
            "/keys",
            key_body(&[&machine], "primary-key-card", Some("C-9".into()), year()),
        )
        .await
        .error(409, ErrorCode::Conflict);
    assert!(message.contains("C-9"), "{message}");

    // A personal key needs an operator of this organization.
    let mut body = key_body(&[&machine], "digital-key", None, year());
    body["operator_id"] = json!("opr_someoneelse");
    server
        .post("/keys", body)
        .await
        .error(400, ErrorCode::InvalidRequest);
    server.stop().await;
}

#[tokio::test]
async fn editing_and_revoking_a_key_bump_its_version() {
    let server = start().await;
    let machine = server.create_machine("Excavator 7").await;
    let ann = server.create_operator("Ann", "+4512345678", false).await;
    let mut body = key_body(&[&machine], "rolling-pin", None, year());
    body["operator_id"] = json!(ann.operator.id);
    body["description"] = json!("night shift");
    let key: Key = server.post("/keys", body).await.expect(201);
    let path = format!("/keys/{}", key.id);

    let new_end = START + Duration::days(30);
    let edited: Key = server
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"valid_to": rfc3339(new_end), "description": "day shift"})),
        )
        .await
        .expect(200);
    assert_eq!(edited.version, 2);
    assert_eq!(edited.validity.valid_to, new_end);
    assert_eq!(edited.validity.valid_from, key.validity.valid_from);
    assert_eq!(edited.description, "day shift");
    let fetched: Key = server.get(&path).await.expect(200);
    assert_eq!(fetched, edited);

    server
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"valid_to": rfc3339(START - Duration::days(5))})),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);

    let revoked: Key = server
        .post(&format!("{path}/revoke"), json!({}))
        .await
        .expect(200);
    assert!(revoked.revoked);
    assert_eq!(revoked.version, 3);

    let mine: Vec<Key> = server
        .get(&format!("/keys?operator_id={}", ann.operator.id))
        .await
        .expect(200);
    assert_eq!(mine, vec![revoked]);
    server.stop().await;
}

#[tokio::test]
async fn a_machine_cannot_be_deleted_while_keys_open_it() {
    let server = start().await;
    let machine = server.create_machine("Excavator 7").await;
    let key: Key = server
        .post("/keys", key_body(&[&machine], "static-pin", None, year()))
        .await
        .expect(201);
    let path = format!("/machines/{machine}");
    server
        .admin(Method::DELETE, &path, None)
        .await
        .error(409, ErrorCode::Conflict);
    server
        .admin(Method::DELETE, &format!("/keys/{}", key.id), None)
        .await;
    assert_eq!(
        server.admin(Method::DELETE, &path, None).await.status.as_u16(),
        204
    );
    server.get(&path).await.error(404, ErrorCode::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn machines_default_to_tu600_and_check_their_public_key() {
    let server = start().await;
    let plain: opkey_protocol::Machine = server
        .post("/machines", json!({"name": "Dumper"}))
        .await
        .expect(201);
    assert_eq!(plain.unit_type, opkey_protocol::TelematicsUnit::Tu600);
    assert_eq!(plain.keypad, opkey_protocol::Keypad::None);
    let phone = Phone::new();
    let with_key: opkey_protocol::Machine = server
        .post(
            "/machines",
            json!({"name": "Lift", "unit_type": "TU700", "keypad": "k300", "ble_public_key": phone.public_key}),
        )
        .await
        .expect(201);
    assert_eq!(
        with_key.ble_public_key.as_deref(),
        Some(phone.public_key.as_str())
    );
    let message = server
        .post("/machines", json!({"name": "Bad", "ble_public_key": "AAAA"}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("ble_public_key:"), "{message}");
    let all: Vec<opkey_protocol::Machine> = server.get("/machines").await.expect(200);
    assert_eq!(all, vec![plain, with_key]);
    server.stop().await;
}
