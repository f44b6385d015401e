//! A telematics unit online reports its usage sessions itself, signed with its machine key.

use crate::common::*;
use opkey_protocol::api::{
    ErrorCode, EventSource, MachineUsageReceipt, UsageEventKind, UsageEventView, machine_usage_message,
};
use serde_json::{Value, json};

async fn register(server: &TestServer, name: &str) -> SigningUnit {
    SigningUnit::register(server, name, json!({})).await
}

/// An upload body with a fresh nonce.
fn upload(unit: &SigningUnit, sessions: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "machine_id": unit.id,
        "sent_at": "2026-01-05T09:00:00Z",
        "nonce": SigningUnit::nonce(),
        "sessions": sessions,
    }))
    .unwrap()
}

fn sign_upload(unit: &SigningUnit, body: &[u8]) -> String {
    unit.sign(&machine_usage_message(body))
}

fn session(n: u32, ended_by: &str, ended_at: Option<&str>) -> Value {
    json!({
        "usage_session": n,
        "key_id": "key_aaaaaaaaaaaaaaaa",
        "operator_id": "opr_aaaaaaaaaaaaaaaa",
        "started_at": format!("2026-01-05T08:{:02}:00Z", n),
        "ended_at": ended_at,
        "ended_by": ended_by,
    })
}

async fn send(server: &TestServer, body: Vec<u8>, signature: &str) -> Answer {
    machine_post(server, "/machine/v1/usage", body, signature).await
}

async fn report(server: &TestServer, unit: &SigningUnit, sessions: Vec<Value>) -> Answer {
    let body = upload(unit, sessions);
    let signature = sign_upload(unit, &body);
    send(server, body, &signature).await
}

#[tokio::test]
async fn a_machines_signed_upload_is_stored_and_the_admin_sees_it_with_machine_and_operator() {
    let server = start().await;
    let unit = register(&server, "Excavator 7").await;
    let receipt: MachineUsageReceipt = report(
        &server,
        &unit,
        vec![
            session(1, "command", Some("2026-01-05T08:30:00Z")),
            json!({"usage_session": 2, "key_id": "key_bbbbbbbbbbbbbbbb", "started_at": "2026-01-05T08:40:00Z",
                   "ended_by": "restart"}),
        ],
    )
    .await
    .expect(200);
    assert_eq!(
        receipt,
        MachineUsageReceipt {
            accepted: 2,
            updated: 0,
            duplicates: 0
        }
    );

    let events: Vec<UsageEventView> = server
        .get(&format!("/events?machine_id={}", unit.id))
        .await
        .expect(200);
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first.source, EventSource::Machine);
    assert_eq!(first.event.kind, UsageEventKind::UsageSession);
    assert_eq!(first.event.machine_id, unit.id);
    assert_eq!(first.event.usage_session, Some(1));
    assert_eq!(first.event.key_id.as_deref(), Some("key_aaaaaaaaaaaaaaaa"));
    assert_eq!(first.operator_id, "opr_aaaaaaaaaaaaaaaa");
    assert_eq!(first.event.outcome, "command");
    assert_eq!(
        first.event.ended_at,
        Some(time::macros::datetime!(2026-01-05 08:30 UTC))
    );
    assert_eq!(first.phone_id, "", "no phone sent it");
    assert_eq!(first.received_at, START);
    assert_eq!(
        (
            events[1].operator_id.as_str(),
            events[1].event.outcome.as_str(),
            events[1].event.ended_at
        ),
        ("", "restart", None),
        "a non-personal key's session, its end unknown"
    );
    let by_operator: Vec<UsageEventView> = server
        .get("/events?operator_id=opr_aaaaaaaaaaaaaaaa")
        .await
        .expect(200);
    assert_eq!(by_operator.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_upload_not_signed_by_the_machines_registered_key_is_refused() {
    let server = start().await;
    let unit = register(&server, "Excavator 7").await;
    let impostor = register(&server, "Dumper 2").await;

    let body = upload(&unit, vec![session(1, "command", None)]);
    let forged = sign_upload(&impostor, &body);
    send(&server, body.clone(), &forged)
        .await
        .error(401, ErrorCode::BadSignature);
    send(&server, body.clone(), "")
        .await
        .error(401, ErrorCode::BadSignature);
    // A body changed after signing.
    let signature = sign_upload(&unit, &body);
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"command\"", "\"timeout\"")
        .into_bytes();
    assert_ne!(tampered, body);
    send(&server, tampered, &signature)
        .await
        .error(401, ErrorCode::BadSignature);

    let mut unknown = register(&server, "Roller 1").await;
    unknown.id = "mch_nobodynobodyno".into();
    report(&server, &unknown, vec![])
        .await
        .error(404, ErrorCode::NotFound);

    let events: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert!(events.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_replayed_upload_or_one_from_a_clock_a_day_off_is_refused() {
    let server = start().await;
    let unit = register(&server, "Excavator 7").await;
    let body = upload(&unit, vec![session(1, "command", None)]);
    let signature = sign_upload(&unit, &body);
    let receipt: MachineUsageReceipt = send(&server, body.clone(), &signature).await.expect(200);
    assert_eq!(receipt.accepted, 1);
    let message = send(&server, body.clone(), &signature)
        .await
        .error(409, ErrorCode::Conflict);
    assert!(message.contains("nonce"), "{message}");

    // Still refused 23 hours later: the nonce is kept while its sent_at is acceptable.
    server.clock.advance(time::Duration::hours(23));
    send(&server, body.clone(), &signature)
        .await
        .error(409, ErrorCode::Conflict);
    // Past 24 hours, sent_at itself is refused, as is any upload from a clock that far off.
    server.clock.advance(time::Duration::hours(2));
    let message = send(&server, body, &signature)
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("sent_at:"), "{message}");
    let events: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(events.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_session_sent_again_is_a_duplicate_and_stored_once() {
    let server = start().await;
    let unit = register(&server, "Excavator 7").await;
    let sessions = vec![
        session(1, "command", Some("2026-01-05T08:30:00Z")),
        session(2, "timeout", Some("2026-01-05T08:34:00Z")),
    ];
    let first: MachineUsageReceipt = report(&server, &unit, sessions.clone()).await.expect(200);
    assert_eq!(first.accepted, 2);
    // The answer was lost: the machine sends them again, with a new one, in a new upload.
    let mut again = sessions;
    again.push(session(3, "engine_stopped", Some("2026-01-05T08:50:00Z")));
    let receipt: MachineUsageReceipt = report(&server, &unit, again).await.expect(200);
    assert_eq!(
        receipt,
        MachineUsageReceipt {
            accepted: 1,
            updated: 0,
            duplicates: 2
        }
    );
    let events: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(
        events.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
        ["session-1", "session-2", "session-3"]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_open_session_sent_again_closed_is_updated() {
    let server = start().await;
    let unit = register(&server, "Excavator 7").await;
    let receipt: MachineUsageReceipt = report(&server, &unit, vec![session(4, "open", None)])
        .await
        .expect(200);
    assert_eq!(receipt.accepted, 1);
    let open: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(
        (open[0].event.outcome.as_str(), open[0].event.ended_at),
        ("open", None)
    );

    let closed = session(4, "engine_stopped", Some("2026-01-05T08:59:00Z"));
    let receipt: MachineUsageReceipt = report(&server, &unit, vec![closed.clone()]).await.expect(200);
    assert_eq!(
        receipt,
        MachineUsageReceipt {
            accepted: 0,
            updated: 1,
            duplicates: 0
        }
    );
    let receipt: MachineUsageReceipt = report(&server, &unit, vec![closed]).await.expect(200);
    assert_eq!(receipt.duplicates, 1, "closed once, it stays as it is");
    let events: Vec<UsageEventView> = server.get("/events").await.expect(200);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.outcome, "engine_stopped");
    assert_eq!(
        events[0].event.ended_at,
        Some(time::macros::datetime!(2026-01-05 08:59 UTC))
    );

    let message = report(
        &server,
        &unit,
        vec![session(5, "command", Some("2026-01-05T07:00:00Z"))],
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("sessions[0].ended_at:"), "{message}");
    server.stop().await;
}
