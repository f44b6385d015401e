//! JSON request bodies as the API fuzzer sends them: anything but an object is a 400 on
//! every JSON endpoint (serde would read an array into a struct by position), a whole
//! number written as a float is that number, and a type error names the field. Also the
//! OpenAPI shapes that keep the fuzzer's idea of "valid" equal to the server's.

use crate::common::{SigningUnit, machine_post, start};
use opkey_protocol::api::{ErrorCode, machine_keypad_message, machine_usage_message};
use reqwest::Method;
use serde_json::{Value, json};

const NOT_OBJECTS: [&str; 6] = ["[null, null]", "[]", "\"name\"", "12", "true", "null"];

#[tokio::test]
async fn an_array_body_does_not_edit_a_machine_by_position() {
    let server = start().await;
    let id = server.create_machine("Lift 7").await;
    let before: Value = server.get(&format!("/machines/{id}")).await.expect(200);
    for body in NOT_OBJECTS {
        let answer = server
            .send(
                server
                    .client
                    .patch(server.url(&format!("/admin/v1/machines/{id}")))
                    .bearer_auth(crate::common::ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        let message = answer.error(400, ErrorCode::InvalidRequest);
        assert!(message.contains("must be a JSON object"), "{body}: {message}");
    }
    let after: Value = server.get(&format!("/machines/{id}")).await.expect(200);
    assert_eq!(before, after);
}

#[tokio::test]
async fn every_json_endpoint_refuses_a_body_that_is_not_an_object() {
    let server = start().await;
    let machine = server.create_machine("Lift 8").await;
    let admin = Some(crate::common::ADMIN_TOKEN);
    let endpoints: [(Method, String, Option<&str>); 12] = [
        (Method::POST, "/admin/v1/organizations".into(), admin),
        (Method::POST, "/admin/v1/users".into(), admin),
        (Method::POST, "/admin/v1/operators".into(), admin),
        (Method::PATCH, "/admin/v1/operators/opr_x".into(), admin),
        (Method::POST, "/admin/v1/machines".into(), admin),
        (Method::PATCH, format!("/admin/v1/machines/{machine}"), admin),
        (Method::POST, "/admin/v1/keys".into(), admin),
        (Method::PATCH, "/admin/v1/keys/key_x".into(), admin),
        (Method::POST, "/v1/invites/redeem".into(), None),
        (Method::POST, "/v1/session/challenge".into(), None),
        (Method::POST, "/v1/session".into(), None),
        (Method::POST, "/machine/v1/usage".into(), None),
    ];
    for (method, path, token) in endpoints {
        for body in NOT_OBJECTS {
            let mut request = server
                .client
                .request(method.clone(), server.url(&path))
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = server.send(request).await;
            assert_eq!(
                answer.status.as_u16(),
                400,
                "{method} {path} {body}: {}",
                answer.body
            );
            assert_eq!(
                answer.body["error"]["code"], "invalid_request",
                "{method} {path} {body}"
            );
            let message = answer.body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("must be a JSON object"),
                "{method} {path} {body}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn a_signed_machine_request_that_is_not_an_object_is_refused_before_anything_else() {
    let server = start().await;
    let unit = SigningUnit::register(&server, "Boom 3", json!({"keypad": "dual-id"})).await;
    for body in NOT_OBJECTS {
        let usage = machine_post(
            &server,
            "/machine/v1/usage",
            body.as_bytes().to_vec(),
            &unit.sign(&machine_usage_message(body.as_bytes())),
        )
        .await;
        let message = usage.error(400, ErrorCode::InvalidRequest);
        assert!(message.contains("must be a JSON object"), "{body}: {message}");
        let keypad = machine_post(
            &server,
            "/machine/v1/keypad",
            body.as_bytes().to_vec(),
            &unit.sign(&machine_keypad_message(body.as_bytes())),
        )
        .await;
        keypad.error(400, ErrorCode::InvalidRequest);
    }
}

#[tokio::test]
async fn a_whole_float_is_that_integer_and_a_fraction_is_refused_by_field() {
    let server = start().await;
    let machine = server.create_machine("Lift 9").await;
    let key = |digits: Value| {
        json!({
            "machine_ids": [machine],
            "access_type": "rolling-pin",
            "valid_from": "2026-01-05T09:00:00Z",
            "valid_to": "2026-02-05T09:00:00Z",
            "pin_digits": digits,
            "pin_period_s": 120.0,
        })
    };
    let created: Value = server.post("/keys", key(json!(8.0))).await.expect(201);
    assert_eq!(created["rolling_pin"]["digits"], 8, "{created}");
    assert_eq!(created["rolling_pin"]["period_s"], 120, "{created}");
    let message = server
        .post("/keys", key(json!(8.5)))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("pin_digits:"), "{message}");
    let message = server
        .post("/keys", key(json!(1e300)))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("pin_digits:"), "{message}");
}

#[tokio::test]
async fn a_type_error_names_the_field_it_is_in() {
    let server = start().await;
    let message = server
        .admin(
            Method::PATCH,
            "/keys/key_x",
            Some(json!({"valid_to": "", "description": null})),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("valid_to:"), "{message}");
    let message = server
        .post("/organizations", json!({"name": ["Acme"]}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.starts_with("name:"), "{message}");
}

#[test]
fn optional_date_times_are_one_of_null_and_a_formatted_string() {
    let doc: Value = serde_json::from_str(&opkey_server::openapi_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("EditKey", "valid_to"),
        ("MachineUsageSession", "ended_at"),
        ("UsageEvent", "ended_at"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(property["type"], Value::Null, "{schema}.{field}: {property}");
        let branches = property["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}.{field}: {property}"));
        assert_eq!(branches.len(), 2, "{schema}.{field}: {property}");
        assert_eq!(branches[0], json!({"type": "null"}), "{schema}.{field}");
        assert_eq!(branches[1]["type"], "string", "{schema}.{field}");
        assert_eq!(branches[1]["format"], "date-time", "{schema}.{field}");
    }
    let machine_ids = &schemas["CreateKey"]["properties"]["machine_ids"];
    assert_eq!(machine_ids["uniqueItems"], true, "{machine_ids}");
    assert_eq!(machine_ids["minItems"], 1, "{machine_ids}");
}

#[tokio::test]
async fn a_field_given_twice_is_refused_at_any_depth() {
    let server = start().await;
    for body in [
        r#"{"name": "Acme", "name": "Other"}"#,
        r#"{"name": "Acme", "extra": {"a": 1, "a": 2}}"#,
    ] {
        let answer = server
            .send(
                server
                    .client
                    .post(server.url("/admin/v1/organizations"))
                    .bearer_auth(crate::common::ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        let message = answer.error(400, ErrorCode::InvalidRequest);
        assert!(message.contains("duplicate field"), "{body}: {message}");
    }
}

#[tokio::test]
async fn a_deeply_nested_body_is_a_400_not_a_crash() {
    let server = start().await;
    let body = format!("{{\"name\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let answer = server
        .send(
            server
                .client
                .post(server.url("/admin/v1/organizations"))
                .bearer_auth(crate::common::ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    answer.error(400, ErrorCode::InvalidRequest);
    server.get("/whoami").await.expect::<Value>(200);
}
