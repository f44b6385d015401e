//! Rolling PIN and Static PIN keys: keypad slots, PIN uniqueness, secrets sealed at rest,
//! sync of PIN secrets, keypad tables in provisioning and for the machine itself.

use crate::common::*;
use opkey_protocol::Key;
use opkey_protocol::api::{
    ErrorCode, KeypadTable, MachineProvisioning, PinSecretRecord, StaticPinView, SyncResponse,
    machine_keypad_message, machine_usage_message,
};
use opkey_protocol::encoding::b64;
use opkey_protocol::pin::{PinAlgorithm, PinSeed};
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

fn body(machines: &[&str], access_type: &str, extra: Value) -> Value {
    let mut b = json!({
        "machine_ids": machines,
        "access_type": access_type,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2027-01-01T00:00:00Z",
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn rolling(server: &TestServer, machines: &[&str], extra: Value) -> Key {
    server
        .post("/keys", body(machines, "rolling-pin", extra))
        .await
        .expect(201)
}

fn slot(key: &Key) -> u16 {
    key.rolling_pin.unwrap().slot.get()
}

async fn keypad_unit(server: &TestServer, name: &str, keypad: &str) -> SigningUnit {
    SigningUnit::register(server, name, json!({"keypad": keypad})).await
}

/// A keypad-table request body with a fresh nonce.
fn keypad_request(unit: &SigningUnit, known_version: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "machine_id": unit.id, "sent_at": "2026-01-05T09:00:00Z", "nonce": SigningUnit::nonce(),
        "known_version": known_version,
    }))
    .unwrap()
}

async fn fetch(server: &TestServer, body: Vec<u8>, signature: &str) -> Answer {
    machine_post(server, "/machine/v1/keypad", body, signature).await
}

#[tokio::test]
async fn rolling_pin_keys_take_the_lowest_slot_free_on_all_their_machines() {
    let server = start().await;
    let a = server.create_machine("Excavator 7").await;
    let b = server.create_machine("Dumper 2").await;
    let first = rolling(&server, &[&a], json!({})).await;
    let info = first.rolling_pin.unwrap();
    assert_eq!(
        (info.slot.get(), info.algorithm, info.digits, info.period_s),
        (1, PinAlgorithm::Sha256, 6, 60)
    );
    assert_eq!(slot(&rolling(&server, &[&b], json!({})).await), 1);
    // Slot 1 is held on both: a key for both gets 2.
    let both = rolling(
        &server,
        &[&a, &b],
        json!({"pin_algorithm": "sha1", "pin_digits": 8, "pin_period_s": 30}),
    )
    .await;
    assert_eq!(slot(&both), 2);
    assert_eq!(both.rolling_pin.unwrap().digits, 8);
    // Reads carry the slot too.
    let read: Key = server.get(&format!("/keys/{}", both.id)).await.expect(200);
    assert_eq!(read.rolling_pin, both.rolling_pin);
    // Deleting frees the slot.
    server
        .admin(Method::DELETE, &format!("/keys/{}", first.id), None)
        .await;
    assert_eq!(slot(&rolling(&server, &[&a], json!({})).await), 1);
    // Expiry frees it too.
    let short = rolling(&server, &[&b], json!({"valid_to": "2026-01-06T00:00:00Z"})).await;
    assert_eq!(slot(&short), 3);
    server.clock.advance(Duration::days(2));
    assert_eq!(slot(&rolling(&server, &[&b], json!({})).await), 3);
}

#[tokio::test]
async fn a_keypad_holds_at_most_495_rolling_pin_keys() {
    let server = start().await;
    let a = server.create_machine("Excavator 7").await;
    for n in 1..=495u16 {
        assert_eq!(slot(&rolling(&server, &[&a], json!({})).await), n);
    }
    let message = server
        .post("/keys", body(&[&a], "rolling-pin", json!({})))
        .await
        .error(409, ErrorCode::DeviceLimitReached);
    assert!(
        message.contains("Excavator 7") && message.contains(&a) && message.contains("495"),
        "{message}"
    );
}

#[tokio::test]
async fn pin_fields_on_the_wrong_access_type_are_refused_naming_the_field() {
    let server = start().await;
    let a = server.create_machine("Excavator 7").await;
    for (access_type, extra, field) in [
        ("static-pin", json!({"pin_digits": 6}), "pin_digits"),
        (
            "key-card",
            json!({"card_id": "C1", "pin_algorithm": "sha1"}),
            "pin_algorithm",
        ),
        ("rolling-pin", json!({"static_pin": "1234"}), "static_pin"),
        ("rolling-pin", json!({"pin_digits": 5}), "pin_digits"),
        ("rolling-pin", json!({"pin_period_s": 10}), "pin_period_s"),
        ("static-pin", json!({"static_pin": "12a4"}), "static_pin"),
        ("static-pin", json!({"static_pin": "123"}), "static_pin"),
    ] {
        let message = server
            .post("/keys", body(&[&a], access_type, extra))
            .await
            .error(400, ErrorCode::InvalidRequest);
        assert!(message.starts_with(field), "{message}");
    }
}

#[tokio::test]
async fn static_pins_are_unique_per_device_generated_when_left_out_and_shown_to_admins() {
    let server = start().await;
    let a = server.create_machine("Excavator 7").await;
    let b = server.create_machine("Dumper 2").await;
    let given: Key = server
        .post(
            "/keys",
            body(&[&a], "static-pin", json!({"static_pin": "48213957"})),
        )
        .await
        .expect(201);
    let view: StaticPinView = server
        .get(&format!("/keys/{}/static-pin", given.id))
        .await
        .expect(200);
    assert_eq!(view.static_pin, "48213957");
    assert!(!format!("{view:?}").contains("48213957"));
    // The same PIN on another machine is fine; on the same machine it is not.
    let on_b: Key = server
        .post(
            "/keys",
            body(&[&b], "static-pin", json!({"static_pin": "48213957"})),
        )
        .await
        .expect(201);
    let message = server
        .post(
            "/keys",
            body(&[&b, &a], "static-pin", json!({"static_pin": "48213957"})),
        )
        .await
        .error(409, ErrorCode::Conflict);
    assert!(
        message.contains("Dumper 2") && message.contains(&on_b.id),
        "{message}"
    );
    assert!(!message.contains("48213957"), "{message}");
    // Generated: 6 digits.
    let generated: Key = server
        .post("/keys", body(&[&a], "static-pin", json!({})))
        .await
        .expect(201);
    let view: StaticPinView = server
        .get(&format!("/keys/{}/static-pin", generated.id))
        .await
        .expect(200);
    assert_eq!(view.static_pin.len(), 6);
    assert!(view.static_pin.bytes().all(|c| c.is_ascii_digit()));
    // Not a Static PIN key: 409; unknown key: 404.
    let card: Key = server
        .post("/keys", body(&[&a], "key-card", json!({"card_id": "C1"})))
        .await
        .expect(201);
    server
        .get(&format!("/keys/{}/static-pin", card.id))
        .await
        .error(409, ErrorCode::Conflict);
    server
        .get("/keys/key_nope/static-pin")
        .await
        .error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn sync_delivers_pin_secrets_and_the_database_never_holds_them_in_the_clear() {
    let server = start().await;
    let a = server.create_machine("Excavator 7").await;
    let (op, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let rolling_key = rolling(&server, &[&a], json!({"operator_id": op})).await;
    let static_key: Key = server
        .post(
            "/keys",
            body(
                &[&a],
                "static-pin",
                json!({"operator_id": op, "static_pin": "73914862"}),
            ),
        )
        .await
        .expect(201);
    let page: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let secret =
        |id: &str| -> PinSecretRecord { page.pin_secrets.iter().find(|s| s.key_id == id).cloned().unwrap() };
    let seed_b64 = secret(&rolling_key.id).seed.unwrap();
    assert!(secret(&rolling_key.id).static_pin.is_none());
    assert_eq!(secret(&static_key.id).static_pin.as_deref(), Some("73914862"));
    assert!(!format!("{:?}", page.pin_secrets).contains(&seed_b64));
    let seed = PinSeed::from_b64(&seed_b64).unwrap();
    assert_eq!(seed.as_bytes().len(), 32);
    // An idle sync sends nothing again.
    let idle: SyncResponse = sync(&server, &access, page.cursor, None).await.expect(200);
    assert!(idle.pin_secrets.is_empty());

    let TestServer {
        server: running,
        _dir,
        ..
    } = server;
    running.unwrap().shutdown().await;
    let dir = _dir.path().to_owned();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("opkey.db") && !name.ends_with("-key") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!bytes.is_empty());
    assert!(!contains(seed.as_bytes()));
    assert!(!contains(seed_b64.as_bytes()));
    assert!(!contains(b"73914862"));
    assert_eq!(std::fs::read(dir.join("opkey.db.secrets-key")).unwrap().len(), 32);
}

#[tokio::test]
async fn provisioning_carries_the_keypad_table_of_a_keypad_machine_only() {
    let server = start().await;
    let unit = keypad_unit(&server, "Excavator 7", "dual-id").await;
    let plain = keypad_unit(&server, "Dumper 2", "none").await;
    let r = rolling(&server, &[&unit.id, &plain.id], json!({})).await;
    let s: Key = server
        .post(
            "/keys",
            body(&[&unit.id], "static-pin", json!({"static_pin": "5555"})),
        )
        .await
        .expect(201);
    let c: Key = server
        .post(
            "/keys",
            body(&[&unit.id], "ipaf-card", json!({"card_id": "IPAF-1"})),
        )
        .await
        .expect(201);
    server
        .post(
            "/keys",
            body(
                &[&unit.id],
                "digital-key",
                json!({"operator_id": server.create_operator("Bo", "+4587654321", false).await.operator.id}),
            ),
        )
        .await
        .expect::<Key>(201);
    let bundle: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", unit.id))
        .await
        .expect(200);
    let table = bundle.keypad.clone().unwrap();
    assert_eq!(table.rolling_pins.len(), 1);
    assert_eq!(table.rolling_pins[0].holder.key_id, r.id);
    assert_eq!(table.rolling_pins[0].holder.serial, 1);
    assert_eq!(table.static_pins[0].holder.key_id, s.id);
    assert_eq!(table.static_pins[0].static_pin, "5555");
    assert_eq!(table.cards[0].holder.key_id, c.id);
    assert_eq!(table.cards[0].card_id, "IPAF-1");
    let debug = format!("{table:?} {bundle:?}");
    assert!(
        !debug.contains("5555") && !debug.contains(&table.rolling_pins[0].seed),
        "{debug}"
    );
    let plain_bundle: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", plain.id))
        .await
        .expect(200);
    assert!(plain_bundle.keypad.is_none());

    // Deleting a key raises the version and issues a revocation entry for it.
    server
        .admin(Method::DELETE, &format!("/keys/{}", s.id), None)
        .await;
    let after: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", unit.id))
        .await
        .expect(200);
    let after_table = after.keypad.unwrap();
    assert!(after_table.version > table.version);
    assert!(after_table.static_pins.is_empty());
    assert_ne!(after.revocations, bundle.revocations);
    assert!(after.revocations.is_some());
}

#[tokio::test]
async fn a_machine_fetches_its_keypad_table_signed_once_per_nonce_and_gets_204_when_current() {
    let server = start().await;
    let unit = keypad_unit(&server, "Excavator 7", "k300").await;
    rolling(&server, &[&unit.id], json!({})).await;
    let request = keypad_request(&unit, 0);
    let signature = unit.sign(&machine_keypad_message(&request));
    let table: KeypadTable = fetch(&server, request.clone(), &signature).await.expect(200);
    assert_eq!(table.rolling_pins.len(), 1);
    // Replayed: refused.
    fetch(&server, request, &signature)
        .await
        .error(409, ErrorCode::Conflict);
    // Current: 204.
    let request = keypad_request(&unit, table.version);
    let answer = fetch(
        &server,
        request.clone(),
        &unit.sign(&machine_keypad_message(&request)),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 204);
    // Signed as a usage upload, or by another key: 401.
    let request = keypad_request(&unit, 0);
    fetch(
        &server,
        request.clone(),
        &unit.sign(&machine_usage_message(&request)),
    )
    .await
    .error(401, ErrorCode::BadSignature);
    let other = keypad_unit(&server, "Other", "k300").await;
    fetch(
        &server,
        request.clone(),
        &other.sign(&machine_keypad_message(&request)),
    )
    .await
    .error(401, ErrorCode::BadSignature);
    // A new key raises the version: the table comes again.
    rolling(&server, &[&unit.id], json!({})).await;
    let request = keypad_request(&unit, table.version);
    let newer: KeypadTable = fetch(
        &server,
        request.clone(),
        &unit.sign(&machine_keypad_message(&request)),
    )
    .await
    .expect(200);
    assert!(newer.version > table.version);
    assert_eq!(newer.rolling_pins.len(), 2);
    // Stale clock: 400.
    let stale = serde_json::to_vec(&json!({
        "machine_id": unit.id, "sent_at": "2026-01-01T00:00:00Z", "nonce": b64(&[7u8; 16]), "known_version": 0,
    }))
    .unwrap();
    fetch(
        &server,
        stale.clone(),
        &unit.sign(&machine_keypad_message(&stale)),
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn editing_or_revoking_a_keypad_key_raises_the_table_version_and_issues_a_revocation_list() {
    let server = start().await;
    let unit = keypad_unit(&server, "Excavator 7", "dual-id").await;
    let card: Key = server
        .post("/keys", body(&[&unit.id], "key-card", json!({"card_id": "C-7"})))
        .await
        .expect(201);
    let before: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", unit.id))
        .await
        .expect(200);
    assert!(before.revocations.is_none());
    let edited: Key = server
        .admin(
            Method::PATCH,
            &format!("/keys/{}", card.id),
            Some(json!({"valid_to": "2026-06-01T00:00:00Z"})),
        )
        .await
        .expect(200);
    let after_edit: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", unit.id))
        .await
        .expect(200);
    let table = after_edit.keypad.clone().unwrap();
    assert!(table.version > before.keypad.unwrap().version);
    assert_eq!(table.cards[0].holder.serial as u64, edited.version);
    assert!(after_edit.revocations.is_some());
    server
        .post(&format!("/keys/{}/revoke", card.id), json!({}))
        .await
        .expect::<Key>(200);
    let after_revoke: MachineProvisioning = server
        .get(&format!("/machines/{}/provisioning", unit.id))
        .await
        .expect(200);
    assert!(after_revoke.keypad.as_ref().unwrap().version > table.version);
    assert!(after_revoke.keypad.unwrap().cards.is_empty());
    assert_ne!(after_revoke.revocations, after_edit.revocations);
    let list = opkey_protocol::ble::RevocationList::decode(
        &opkey_protocol::encoding::unb64(after_revoke.revocations.as_deref().unwrap()).unwrap(),
    )
    .unwrap();
    let entry = list.body().entries.iter().find(|e| e.key_id == card.id).unwrap();
    assert_eq!(entry.min_serial, u32::MAX, "revoked entirely");

    // A machine without a keypad has no table to fetch.
    let plain = keypad_unit(&server, "Dumper 2", "none").await;
    let request = keypad_request(&plain, 0);
    fetch(
        &server,
        request.clone(),
        &plain.sign(&machine_keypad_message(&request)),
    )
    .await
    .error(409, ErrorCode::Conflict);
}
