use crate::common::*;
use opkey_protocol::api::{ErrorCode, UsageEventKind, UsageEventView, UsageEventsReceipt};
use reqwest::Method;
use serde_json::{Value, json};

fn event(id: &str, machine_id: &str, outcome: &str) -> Value {
    json!({
        "id": id,
        "kind": "unlock_attempt",
        "key_id": "key_aaaaaaaaaaaaaaaa",
        "machine_id": machine_id,
        "at": "2026-01-05T08:59:00Z",
        "outcome": outcome,
    })
}

async fn upload(server: &TestServer, access: Option<&str>, events: Vec<Value>) -> Answer {
    server
        .call(
            Method::POST,
            "/v1/events",
            access,
            Some(json!({"events": events})),
        )
        .await
}

#[tokio::test]
async fn uploading_the_same_events_twice_stores_them_once() {
    let server = start().await;
    let (op_id, _phone, phone_id, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let other = server.create_ble_machine("Dumper 2").await;
    let session = json!({
        "id": "evt-3",
        "kind": "usage_session",
        "machine_id": machine,
        "at": "2026-01-05T09:00:00Z",
        "outcome": "relocked",
        "usage_session": 42,
        "ended_at": "2026-01-05T09:30:00Z",
    });
    let first = vec![
        event("evt-1", &machine, "unlocked"),
        event("evt-2", &other, "denied:expired"),
        session,
    ];
    let receipt: UsageEventsReceipt = upload(&server, Some(&access), first.clone()).await.expect(200);
    assert_eq!(
        receipt,
        UsageEventsReceipt {
            accepted: 3,
            duplicates: 0
        }
    );

    // The answer was lost: the phone sends them again with one more (and one repeated).
    let mut retry = first.clone();
    retry.push(event("evt-4", &machine, "not-in-range"));
    retry.push(event("evt-4", &machine, "not-in-range"));
    let receipt: UsageEventsReceipt = upload(&server, Some(&access), retry).await.expect(200);
    assert_eq!(
        receipt,
        UsageEventsReceipt {
            accepted: 1,
            duplicates: 4
        }
    );

    let all: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(
        all.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
        ["evt-1", "evt-2", "evt-4", "evt-3"],
        "oldest first"
    );
    assert!(
        all.iter()
            .all(|e| e.operator_id == op_id && e.phone_id == phone_id && e.received_at == START)
    );
    let relock = &all[3].event;
    assert_eq!(relock.kind, UsageEventKind::UsageSession);
    assert_eq!(relock.usage_session, Some(42));
    assert_eq!(
        relock.ended_at,
        Some(time::macros::datetime!(2026-01-05 09:30 UTC))
    );
    assert_eq!(relock.key_id, None);

    let at_machine: Vec<UsageEventView> = server
        .get(&format!("/events?machine_id={machine}"))
        .await
        .expect(200);
    assert_eq!(at_machine.len(), 3);
    let by_nobody: Vec<UsageEventView> = server
        .get("/events?operator_id=opr_someone_else")
        .await
        .expect(200);
    assert!(by_nobody.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn uploading_events_needs_a_session_and_at_most_500_valid_events() {
    let server = start().await;
    let (_, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    upload(&server, None, vec![event("evt-1", &machine, "unlocked")])
        .await
        .error(401, ErrorCode::SessionExpired);
    upload(&server, Some("made-up"), vec![])
        .await
        .error(401, ErrorCode::SessionExpired);

    let too_many: Vec<Value> = (0..501)
        .map(|i| event(&format!("evt-{i}"), &machine, "unlocked"))
        .collect();
    let message = upload(&server, Some(&access), too_many.clone())
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("500"), "{message}");
    let receipt: UsageEventsReceipt = upload(&server, Some(&access), too_many[..500].to_vec())
        .await
        .expect(200);
    assert_eq!(receipt.accepted, 500);

    let long_id = "x".repeat(65);
    let message = upload(
        &server,
        Some(&access),
        vec![event(&long_id, &machine, "unlocked")],
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("events[0].id:"), "{message}");
    upload(
        &server,
        Some(&access),
        vec![json!({"id": "evt-x", "kind": "teleport"})],
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
    server.stop().await;
}

#[tokio::test]
async fn admins_see_only_events_at_their_own_organizations_machines() {
    let server = start().await;
    let (_, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let receipt: UsageEventsReceipt = upload(
        &server,
        Some(&access),
        vec![
            event("evt-1", &machine, "unlocked"),
            event("evt-2", "mch_not_ours_at_all", "unlocked"),
        ],
    )
    .await
    .expect(200);
    assert_eq!(
        receipt.accepted, 2,
        "kept, even for a machine the backend does not know"
    );
    let other: opkey_protocol::Organization = server
        .post("/organizations", json!({"name": "Build Co"}))
        .await
        .expect(201);
    let theirs: Vec<UsageEventView> = server
        .send(
            server
                .client
                .get(server.url("/admin/v1/events"))
                .bearer_auth(ADMIN_TOKEN)
                .header("x-opkey-organization", &other.id),
        )
        .await
        .expect(200);
    assert!(theirs.is_empty());
    let ours: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].event.machine_id, machine);
    server.stop().await;
}
