use crate::common::*;
use opkey_protocol::api::{AdminIdentity, AdminRole, AdminUserCreated, ErrorCode};
use opkey_protocol::{Key, Organization};
use reqwest::Method;
use serde_json::json;

async fn user(server: &TestServer, role: &str) -> AdminUserCreated {
    server
        .post("/users", json!({"name": format!("{role} user"), "role": role}))
        .await
        .expect(201)
}

#[tokio::test]
async fn requests_without_a_token_or_with_an_unknown_one_get_401() {
    let server = start().await;
    server
        .call(Method::GET, "/admin/v1/operators", None, None)
        .await
        .error(401, ErrorCode::Unauthorized);
    server
        .call(Method::GET, "/admin/v1/whoami", Some("not-a-token"), None)
        .await
        .error(401, ErrorCode::Unauthorized);
    server.stop().await;
}

#[tokio::test]
async fn fleet_admin_can_create_keys_but_viewer_gets_403() {
    let server = start().await;
    let viewer = user(&server, "viewer").await;
    let fleet = user(&server, "fleet-admin").await;
    assert_eq!(viewer.role, AdminRole::Viewer);

    // Everyone may ask who they are.
    let me: AdminIdentity = server
        .call(Method::GET, "/admin/v1/whoami", Some(&viewer.token), None)
        .await
        .expect(200);
    assert_eq!(me.role, AdminRole::Viewer);
    assert_eq!(me.organization_id, viewer.organization_id);

    let machine = server.create_machine("Excavator 7").await;
    let key_body = json!({
        "machine_ids": [machine],
        "access_type": "static-pin",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2026-12-31T00:00:00Z",
    });
    for (method, path) in [
        (Method::GET, "/admin/v1/operators"),
        (Method::GET, "/admin/v1/keys"),
        (Method::GET, "/admin/v1/machines"),
        (Method::GET, "/admin/v1/sms"),
    ] {
        server
            .call(method, path, Some(&viewer.token), None)
            .await
            .error(403, ErrorCode::Forbidden);
    }
    server
        .call(
            Method::POST,
            "/admin/v1/keys",
            Some(&viewer.token),
            Some(key_body.clone()),
        )
        .await
        .error(403, ErrorCode::Forbidden);

    let key: Key = server
        .call(Method::POST, "/admin/v1/keys", Some(&fleet.token), Some(key_body))
        .await
        .expect(201);
    assert_eq!(key.organization_id, fleet.organization_id);

    // Creating admin users and organizations needs the admin role.
    server
        .call(
            Method::POST,
            "/admin/v1/users",
            Some(&fleet.token),
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await
        .error(403, ErrorCode::Forbidden);
    server.stop().await;
}

#[tokio::test]
async fn the_bootstrap_admin_picks_an_organization_by_header_and_users_stay_in_theirs() {
    let server = start().await;
    let default_org: AdminIdentity = server.get("/whoami").await.expect(200);
    let other: Organization = server
        .post("/organizations", json!({"name": "Build Co"}))
        .await
        .expect(201);

    let in_other: AdminIdentity = server
        .send(
            server
                .client
                .get(server.url("/admin/v1/whoami"))
                .bearer_auth(ADMIN_TOKEN)
                .header("x-opkey-organization", &other.id),
        )
        .await
        .expect(200);
    assert_eq!(in_other.organization_id, other.id);
    assert_ne!(in_other.organization_id, default_org.organization_id);

    server
        .send(
            server
                .client
                .get(server.url("/admin/v1/whoami"))
                .bearer_auth(ADMIN_TOKEN)
                .header("x-opkey-organization", "org_doesnotexist00"),
        )
        .await
        .error(404, ErrorCode::NotFound);

    // A user of Build Co, created by the bootstrap admin.
    let builder: AdminUserCreated = server
        .post(
            "/users",
            json!({"name": "Bea", "role": "admin", "organization_id": other.id}),
        )
        .await
        .expect(201);
    assert_eq!(builder.organization_id, other.id);
    let orgs: Vec<Organization> = server
        .call(Method::GET, "/admin/v1/organizations", Some(&builder.token), None)
        .await
        .expect(200);
    assert_eq!(orgs, vec![other.clone()]);
    let all: Vec<Organization> = server.get("/organizations").await.expect(200);
    assert_eq!(all.len(), 2);

    // A user may not switch organizations.
    server
        .send(
            server
                .client
                .get(server.url("/admin/v1/whoami"))
                .bearer_auth(&builder.token)
                .header("x-opkey-organization", &default_org.organization_id),
        )
        .await
        .error(403, ErrorCode::Forbidden);
    server.stop().await;
}

#[tokio::test]
async fn unknown_endpoints_and_malformed_bodies_answer_in_the_error_format() {
    let server = start().await;
    server.get("/nope").await.error(404, ErrorCode::NotFound);
    let message = server
        .post("/operators", json!({"phone": "+4512345678"}))
        .await
        .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("name"), "{message}");
    let health = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.body, "ok");
    server.stop().await;
}
