use crate::common::*;
use opkey_protocol::Key;
use opkey_protocol::api::{ErrorCode, GrantRecord, MachineProvisioning, RevocationRecord, SyncResponse};
use opkey_protocol::ble::revocation::REVOKED_ENTIRELY;
use opkey_protocol::ble::{Grant, Revocation, RevocationList};
use opkey_protocol::encoding::unb64;
use reqwest::Method;
use serde_json::json;
use time::Duration;
use time::macros::datetime;

async fn key_of_type(server: &TestServer, operator_id: &str, machines: &[&str], access_type: &str) -> Key {
    server
        .post(
            "/keys",
            json!({
                "operator_id": operator_id,
                "machine_ids": machines,
                "access_type": access_type,
                "valid_from": "2026-01-01T00:00:00Z",
                "valid_to": "2026-12-31T00:00:00Z",
            }),
        )
        .await
        .expect(201)
}

async fn digital_key(server: &TestServer, operator_id: &str, machines: &[&str]) -> Key {
    key_of_type(server, operator_id, machines, "digital-key").await
}

fn issuer_key(sync: &SyncResponse) -> Vec<u8> {
    unb64(
        sync.issuer_public_key
            .as_deref()
            .expect("every sync names the issuer"),
    )
    .unwrap()
}

/// Decodes a grant record and checks the issuer signed it and the record tells its truth.
fn verified_grant(record: &GrantRecord, issuer: &[u8]) -> Grant {
    let grant = Grant::decode(&unb64(&record.grant).unwrap()).unwrap();
    grant.verify(issuer).expect("signed by the issuer");
    let body = grant.body();
    assert_eq!(body.key_id, record.key_id);
    assert_eq!(body.serial, record.serial);
    assert_eq!(body.machine_ids, record.machine_ids);
    assert_eq!(body.valid_from as i64, record.valid_from.unix_timestamp());
    assert_eq!(body.valid_to as i64, record.valid_to.unix_timestamp());
    grant
}

fn verified_list(record: &RevocationRecord, issuer: &[u8]) -> RevocationList {
    let list = RevocationList::decode(&unb64(&record.list).unwrap()).unwrap();
    list.verify(issuer).expect("signed by the issuer");
    assert_eq!(list.machine_id(), record.machine_id);
    assert_eq!(list.sequence(), record.sequence);
    list
}

fn list_for<'a>(sync: &'a SyncResponse, machine_id: &str) -> &'a RevocationRecord {
    sync.revocations
        .iter()
        .find(|r| r.machine_id == machine_id)
        .unwrap_or_else(|| panic!("no list for {machine_id} in {:?}", sync.revocations))
}

fn entry(key_id: &str, min_serial: u32) -> Revocation {
    Revocation {
        key_id: key_id.to_owned(),
        min_serial,
    }
}

#[tokio::test]
async fn a_digital_key_arrives_as_issuer_signed_grants_naming_the_phone_and_at_most_eight_machines() {
    let server = start().await;
    let (op_id, phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let mut ble = Vec::new();
    for i in 0..9 {
        ble.push(server.create_ble_machine(&format!("Excavator {i}")).await);
    }
    let plain = server.create_machine("Old dumper").await;
    let mut machines: Vec<&str> = ble.iter().map(String::as_str).collect();
    machines.insert(3, &plain);
    let key = digital_key(&server, &op_id, &machines).await;
    // Neither a key of another type nor a key on machines without a BLE key gets a grant.
    key_of_type(&server, &op_id, &[&ble[0]], "rolling-pin").await;
    digital_key(&server, &op_id, &[&plain]).await;

    let synced: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let issuer = issuer_key(&synced);
    assert_eq!(synced.keys.len(), 3);
    assert_eq!(synced.grants.len(), 2, "9 machines with BLE keys: 8 + 1");
    let grants: Vec<Grant> = synced.grants.iter().map(|g| verified_grant(g, &issuer)).collect();
    assert_eq!(grants[0].body().machine_ids, ble[..8].to_vec());
    assert_eq!(grants[1].body().machine_ids, ble[8..].to_vec());
    for grant in &grants {
        let body = grant.body();
        assert_eq!(body.key_id, key.id);
        assert_eq!(body.serial, 1);
        assert_eq!(body.operator_id, op_id);
        assert_eq!(body.phone_public_key.to_vec(), unb64(&phone.public_key).unwrap());
        assert!(body.personal);
        assert_eq!(
            body.valid_from as i64,
            datetime!(2026-01-01 00:00 UTC).unix_timestamp()
        );
        assert_eq!(body.valid_to as i64, (START + Duration::days(7)).unix_timestamp());
        assert_eq!(body.issued_at as i64, START.unix_timestamp());
        assert!(!grant.covers(&plain));
    }
    assert!(synced.revocations.is_empty());
    assert!(synced.cursor > 0);

    // Nothing changed: no grants, no lists, the same cursor; the issuer is still named.
    let idle: SyncResponse = sync(&server, &access, synced.cursor, None).await.expect(200);
    assert!(idle.grants.is_empty() && idle.revocations.is_empty() && idle.keys.is_empty());
    assert_eq!(idle.cursor, synced.cursor);
    assert_eq!(issuer_key(&idle), issuer);

    // Syncing again from 0 brings the same grants without signing new ones.
    let again: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert_eq!(again.grants, synced.grants);
    server.stop().await;
}

#[tokio::test]
async fn an_edit_brings_a_grant_of_the_new_serial_and_lists_refusing_older_ones_on_each_machine() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let (a, b) = (
        server.create_ble_machine("Excavator 7").await,
        server.create_ble_machine("Dumper 2").await,
    );
    let key = digital_key(&server, &op_id, &[&a, &b]).await;
    let first: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let issuer = issuer_key(&first);
    assert_eq!(first.grants.len(), 1);

    let edited: Key = server
        .admin(
            Method::PATCH,
            &format!("/keys/{}", key.id),
            Some(json!({"valid_to": "2026-06-30T00:00:00Z", "description": "until the summer"})),
        )
        .await
        .expect(200);
    assert_eq!(edited.version, 2);
    let delta: SyncResponse = sync(&server, &access, first.cursor, None).await.expect(200);
    assert_eq!(delta.keys, vec![edited.clone()]);
    assert_eq!(delta.grants.len(), 1);
    let grant = verified_grant(&delta.grants[0], &issuer);
    assert_eq!(grant.body().serial, 2);
    assert_eq!(delta.revocations.len(), 2, "one list per machine");
    for machine in [&a, &b] {
        let list = verified_list(list_for(&delta, machine), &issuer);
        assert_eq!(list.sequence(), 1);
        assert_eq!(list.body().entries, vec![entry(&key.id, 2)]);
        assert_eq!(list.issued_at() as i64, START.unix_timestamp());
        assert!(list.refuses(&key.id, 1) && !list.refuses(&key.id, 2));
    }

    // Sequences rise per machine: another edit moves both, a key on one machine only one.
    server
        .admin(
            Method::PATCH,
            &format!("/keys/{}", key.id),
            Some(json!({"description": "site B"})),
        )
        .await
        .expect::<Key>(200);
    let only_a = digital_key(&server, &op_id, &[&a]).await;
    let synced: SyncResponse = sync(&server, &access, delta.cursor, None).await.expect(200);
    server
        .post(&format!("/keys/{}/revoke", only_a.id), json!({}))
        .await
        .expect::<Key>(200);
    let last: SyncResponse = sync(&server, &access, synced.cursor, None).await.expect(200);
    let list_a = verified_list(list_for(&last, &a), &issuer);
    assert_eq!(list_a.sequence(), 3);
    assert_eq!(list_a.body().entries.len(), 2, "{:?}", list_a.body().entries);
    assert!(list_a.revokes_entirely(&only_a.id) && list_a.refuses(&key.id, 2) && !list_a.refuses(&key.id, 3));
    assert!(
        last.revocations.iter().all(|r| r.machine_id != b),
        "b's list did not change"
    );
    assert_eq!(verified_list(list_for(&synced, &b), &issuer).sequence(), 2);
    server.stop().await;
}

#[tokio::test]
async fn revoking_or_deleting_a_digital_key_refuses_it_entirely_and_its_grants_stop() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let revoked = digital_key(&server, &op_id, &[&machine]).await;
    let deleted = digital_key(&server, &op_id, &[&machine]).await;
    let kept = digital_key(&server, &op_id, &[&machine]).await;
    let first: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let issuer = issuer_key(&first);
    assert_eq!(first.grants.len(), 3);

    let after_revoke: Key = server
        .post(&format!("/keys/{}/revoke", revoked.id), json!({}))
        .await
        .expect(200);
    assert!(after_revoke.revoked);
    let delta: SyncResponse = sync(&server, &access, first.cursor, None).await.expect(200);
    assert!(delta.grants.is_empty(), "a revoked key gets no grant");
    let list = verified_list(list_for(&delta, &machine), &issuer);
    assert_eq!(list.body().entries, vec![entry(&revoked.id, REVOKED_ENTIRELY)]);

    let gone = server
        .admin(Method::DELETE, &format!("/keys/{}", deleted.id), None)
        .await;
    assert_eq!(gone.status.as_u16(), 204);
    let delta2: SyncResponse = sync(&server, &access, delta.cursor, None).await.expect(200);
    assert_eq!(delta2.deleted_key_ids, vec![deleted.id.clone()]);
    let list = verified_list(list_for(&delta2, &machine), &issuer);
    assert_eq!(list.sequence(), 2);
    assert!(list.revokes_entirely(&revoked.id) && list.revokes_entirely(&deleted.id));
    assert!(!list.refuses(&kept.id, 1));

    // The machine's provisioning carries the same latest list.
    let bundle: MachineProvisioning = server
        .get(&format!("/machines/{machine}/provisioning"))
        .await
        .expect(200);
    assert_eq!(
        bundle.revocations.as_deref(),
        Some(list_for(&delta2, &machine).list.as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn removing_an_operator_refuses_their_digital_keys_on_every_machine() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let (a, b) = (
        server.create_ble_machine("Excavator 7").await,
        server.create_ble_machine("Dumper 2").await,
    );
    let key = digital_key(&server, &op_id, &[&a, &b]).await;
    sync(&server, &access, 0, None).await.expect::<SyncResponse>(200);
    let removed = server
        .admin(Method::DELETE, &format!("/operators/{op_id}"), None)
        .await;
    assert_eq!(removed.status.as_u16(), 204);
    for machine in [&a, &b] {
        let bundle: MachineProvisioning = server
            .get(&format!("/machines/{machine}/provisioning"))
            .await
            .expect(200);
        let list = RevocationList::decode(&unb64(bundle.revocations.as_deref().unwrap()).unwrap()).unwrap();
        list.verify(&unb64(&bundle.issuer_public_key).unwrap()).unwrap();
        assert_eq!(list.body().entries, vec![entry(&key.id, REVOKED_ENTIRELY)]);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_re_invite_supersedes_the_lost_phones_grants_and_the_new_phone_gets_the_new_serial() {
    let server = start().await;
    let (op_id, _lost, _, lost_access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let key = digital_key(&server, &op_id, &[&machine]).await;
    sync(&server, &lost_access, 0, None)
        .await
        .expect::<SyncResponse>(200);

    server
        .post(&format!("/operators/{op_id}/invite"), json!({}))
        .await
        .expect::<opkey_protocol::api::InviteSummary>(201);
    let (token, _) = invite_secrets(&server.last_sms().await.body);
    let (_, access) = Phone::new().enroll(&server, &token).await;
    let synced: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let issuer = issuer_key(&synced);
    assert_eq!(synced.keys[0].version, 2);
    assert_eq!(verified_grant(&synced.grants[0], &issuer).body().serial, 2);
    let list = verified_list(list_for(&synced, &machine), &issuer);
    assert_eq!(list.body().entries, vec![entry(&key.id, 2)]);
    server.stop().await;
}

#[tokio::test]
async fn grants_are_renewed_on_the_first_sync_after_their_renewal_time() {
    let server = start().await;
    let (op_id, phone, phone_id, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    digital_key(&server, &op_id, &[&machine]).await;
    let first: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    let issuer = issuer_key(&first);
    assert_eq!(first.grants[0].valid_to, START + Duration::days(7));

    // Renewed two days before the end: not yet after four days …
    server.clock.advance(Duration::days(4));
    let access = phone.open_session(&server, &phone_id).await;
    let early: SyncResponse = sync(&server, &access, first.cursor, None).await.expect(200);
    assert!(early.grants.is_empty());

    // … but after five.
    server.clock.advance(Duration::days(1) + Duration::seconds(1));
    let now = START + Duration::days(5) + Duration::seconds(1);
    let access = phone.open_session(&server, &phone_id).await;
    let renewed: SyncResponse = sync(&server, &access, early.cursor, None).await.expect(200);
    assert_eq!(renewed.grants.len(), 1);
    let grant = verified_grant(&renewed.grants[0], &issuer);
    assert_eq!(grant.body().serial, 1);
    assert_eq!(grant.body().issued_at as i64, now.unix_timestamp());
    assert_eq!(renewed.grants[0].valid_to, now + Duration::days(7));
    assert!(renewed.keys.is_empty() && renewed.revocations.is_empty());
    assert!(renewed.cursor > early.cursor);
    let idle: SyncResponse = sync(&server, &access, renewed.cursor, None).await.expect(200);
    assert!(idle.grants.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_machine_that_registers_its_ble_key_later_joins_the_grants_and_a_new_key_reaches_phones() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_machine("Excavator 7").await;
    digital_key(&server, &op_id, &[&machine]).await;
    let first: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert!(first.grants.is_empty());

    let key = MachineKey::new().public_key;
    let registered: opkey_protocol::Machine = server
        .admin(
            Method::PATCH,
            &format!("/machines/{machine}"),
            Some(json!({"ble_public_key": key})),
        )
        .await
        .expect(200);
    assert_eq!(registered.ble_public_key.as_deref(), Some(key.as_str()));
    let delta: SyncResponse = sync(&server, &access, first.cursor, None).await.expect(200);
    assert_eq!(delta.machines, vec![registered]);
    assert_eq!(delta.grants.len(), 1);
    assert_eq!(delta.grants[0].machine_ids, vec![machine.clone()]);

    // A replaced unit: its new key reaches the phone with a fresh grant.
    let replaced = MachineKey::new().public_key;
    server
        .admin(
            Method::PATCH,
            &format!("/machines/{machine}"),
            Some(json!({"ble_public_key": replaced, "serial": "TU600-0042"})),
        )
        .await
        .expect::<opkey_protocol::Machine>(200);
    let again: SyncResponse = sync(&server, &access, delta.cursor, None).await.expect(200);
    assert_eq!(
        again.machines[0].ble_public_key.as_deref(),
        Some(replaced.as_str())
    );
    assert_eq!(again.machines[0].serial, "TU600-0042");
    assert_eq!(again.grants.len(), 1);

    server
        .admin(
            Method::PATCH,
            &format!("/machines/{machine}"),
            Some(json!({"ble_public_key": "AAAA"})),
        )
        .await
        .error(400, ErrorCode::InvalidRequest);
    server
        .admin(Method::PATCH, "/machines/mch_unknown", Some(json!({"name": "x"})))
        .await
        .error(404, ErrorCode::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn grants_and_lists_arrive_whole_when_sync_pages() {
    let server = start().await;
    let (op_id, _phone, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(digital_key(&server, &op_id, &[&machine]).await);
    }
    let first: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    // Edits after the first sync: new grants and lists, fetched two keys a page.
    for key in &keys[..3] {
        server
            .admin(
                Method::PATCH,
                &format!("/keys/{}", key.id),
                Some(json!({"description": "moved"})),
            )
            .await
            .expect::<Key>(200);
    }
    let (mut cursor, mut pages) = (first.cursor, Vec::new());
    loop {
        let page: SyncResponse = sync(&server, &access, cursor, Some(2)).await.expect(200);
        cursor = page.cursor;
        let more = page.has_more;
        pages.push(page);
        if !more {
            break;
        }
    }
    assert_eq!(pages.len(), 2);
    let grants: Vec<&GrantRecord> = pages.iter().flat_map(|p| &p.grants).collect();
    let mut granted: Vec<(&str, u32)> = grants.iter().map(|g| (g.key_id.as_str(), g.serial)).collect();
    granted.sort();
    let mut expected: Vec<(&str, u32)> = keys[..3].iter().map(|k| (k.id.as_str(), 2)).collect();
    expected.sort();
    assert_eq!(granted, expected);
    let newest = pages
        .iter()
        .flat_map(|p| &p.revocations)
        .map(|r| r.sequence)
        .max();
    assert_eq!(newest, Some(3), "the machine's newest list arrived");
    let idle: SyncResponse = sync(&server, &access, cursor, None).await.expect(200);
    assert!(idle.grants.is_empty() && idle.revocations.is_empty() && idle.keys.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_provisioning_bundle_names_the_issuer_the_machine_key_and_the_timings() {
    let server = start().await;
    let machine = server.create_machine("Excavator 7").await;
    let message = server
        .get(&format!("/machines/{machine}/provisioning"))
        .await
        .error(409, ErrorCode::Conflict);
    assert!(message.contains("register the machine's key first"), "{message}");

    let key = MachineKey::new().public_key;
    server
        .admin(
            Method::PATCH,
            &format!("/machines/{machine}"),
            Some(json!({"ble_public_key": key})),
        )
        .await
        .expect::<opkey_protocol::Machine>(200);
    let bundle: MachineProvisioning = server
        .get(&format!("/machines/{machine}/provisioning"))
        .await
        .expect(200);
    assert_eq!(bundle.machine_id, machine);
    assert_eq!(bundle.name, "Excavator 7");
    assert_eq!(bundle.machine_public_key, key);
    assert_eq!(unb64(&bundle.issuer_public_key).unwrap().len(), 65);
    assert_eq!((bundle.challenge_lifetime_s, bundle.relock_after_s), (10, 120));
    assert_eq!(bundle.revocations, None);

    let (_, _, _, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let synced: SyncResponse = sync(&server, &access, 0, None).await.expect(200);
    assert_eq!(
        synced.issuer_public_key.as_deref(),
        Some(bundle.issuer_public_key.as_str())
    );
    server
        .get("/machines/mch_unknown/provisioning")
        .await
        .error(404, ErrorCode::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn the_issuer_key_survives_a_restart_and_its_file_is_private() {
    let server = start().await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let before: MachineProvisioning = server
        .get(&format!("/machines/{machine}/provisioning"))
        .await
        .expect(200);
    let key_file = server._dir.path().join("opkey.db.issuer-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let server = server.restart().await;
    let after: MachineProvisioning = server
        .get(&format!("/machines/{machine}/provisioning"))
        .await
        .expect(200);
    assert_eq!(after.issuer_public_key, before.issuer_public_key);

    // A damaged key file stops the server instead of being replaced.
    let clock = server.clock.clone();
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("damaged.issuer-key");
    std::fs::write(&damaged, b"not a key").unwrap();
    let mut config = test_config(dir.path(), clock);
    config.issuer_key_path = Some(damaged.clone());
    let refused = opkey_server::start(config, "127.0.0.1:0".parse().unwrap()).await;
    match refused {
        Err(opkey_server::ServerError::IssuerKey { path, .. }) => assert_eq!(path, damaged),
        other => panic!("expected an issuer key error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&damaged).unwrap(), b"not a key");
}

#[tokio::test]
async fn a_machines_list_keeps_sixteen_entries_dropping_those_whose_grants_expire_soonest() {
    let server = start().await;
    let (op_id, phone, phone_id, access) = enrolled_operator(&server, "Ann", "+4512345678").await;
    let machine = server.create_ble_machine("Excavator 7").await;
    let mut keys = Vec::new();
    for hours in 1..=18 {
        let key: Key = server
            .post(
                "/keys",
                json!({
                    "operator_id": op_id,
                    "machine_ids": [machine],
                    "access_type": "digital-key",
                    "valid_from": "2026-01-01T00:00:00Z",
                    "valid_to": (START + Duration::hours(hours)).format(&time::format_description::well_known::Rfc3339).unwrap(),
                }),
            )
            .await
            .expect(201);
        keys.push(key);
    }
    sync(&server, &access, 0, None).await.expect::<SyncResponse>(200);
    for key in &keys {
        server
            .admin(Method::DELETE, &format!("/keys/{}", key.id), None)
            .await;
    }
    let latest = |bundle: MachineProvisioning| {
        RevocationList::decode(&unb64(bundle.revocations.as_deref().unwrap()).unwrap()).unwrap()
    };
    let list = latest(
        server
            .get(&format!("/machines/{machine}/provisioning"))
            .await
            .expect(200),
    );
    assert_eq!(list.sequence(), 18);
    let mut kept: Vec<&str> = list.body().entries.iter().map(|e| e.key_id.as_str()).collect();
    kept.sort();
    let mut expected: Vec<&str> = keys[2..].iter().map(|k| k.id.as_str()).collect();
    expected.sort();
    assert_eq!(kept, expected, "the two whose grants end first are left out");

    // Once their grants have expired, entries leave with the next list.
    server.clock.advance(Duration::hours(10));
    let access = phone.open_session(&server, &phone_id).await;
    let late = digital_key(&server, &op_id, &[&machine]).await;
    sync(&server, &access, 0, None).await.expect::<SyncResponse>(200);
    server
        .post(&format!("/keys/{}/revoke", late.id), json!({}))
        .await
        .expect::<Key>(200);
    let list = latest(
        server
            .get(&format!("/machines/{machine}/provisioning"))
            .await
            .expect(200),
    );
    assert_eq!(list.sequence(), 19);
    assert_eq!(
        list.body().entries.len(),
        8 + 1,
        "keys ending after 10 hours, and the revoked one"
    );
    assert!(list.revokes_entirely(&late.id));
    server.stop().await;
}
