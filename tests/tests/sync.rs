//! The phone keeps its keys current: admin edits and deletions arrive with the next sync,
//! expired keys are never usable, keys survive restarts, a failing server changes nothing,
//! and no secret is ever stored in plaintext.

use opkey_core::Error;
use opkey_e2e::fakes::FakeSmsProvider;
use opkey_e2e::fault_proxy::{NetFault, NetFaultProxy, Rule, Schedule};
use opkey_e2e::{Backend, Invitation, Phone, all_bytes_under, contains, personal_key_request};
use opkey_protocol::api::EditKey;
use opkey_protocol::{AccessType, KeyState};
use opkey_server::{HttpSmsConfig, SmsConfig};
use time::Duration;

async fn enrolled(backend: &Backend, phone_number: &str) -> (String, Phone) {
    let (op, invitation) = backend.invited_operator("Ola Nordmann", phone_number).await;
    let phone = Phone::new();
    phone.core.redeem_invite(&invitation.link).await.expect("redeem");
    (op.operator.id, phone)
}

#[tokio::test]
async fn admin_edits_and_deletions_show_on_the_phone_after_sync() {
    let backend = Backend::start().await;
    let (op, phone) = enrolled(&backend, "+47 412 10 001").await;
    let excavator = backend.machine("Excavator EX-210").await;
    let lift = backend.machine("Scissor lift").await;
    let dig = backend
        .personal_key(&op, &excavator.id, AccessType::DigitalKey, 30)
        .await;
    let card = backend.personal_key(&op, &lift.id, AccessType::KeyCard, 30).await;

    let report = phone.core.sync().await.expect("first sync");
    assert_eq!(report.upserted, 2);
    let keys = phone.core.keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.state == KeyState::Active && k.usable));
    let on_phone = phone.core.key(&dig.id).unwrap();
    assert_eq!(on_phone.machines[0].name, "Excavator EX-210");

    let new_end = dig.validity.valid_to - Duration::days(20);
    let edited = backend
        .admin
        .edit_key(
            &dig.id,
            &EditKey {
                valid_to: Some(new_end),
                description: Some("Hire shortened".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.version, dig.version + 1);
    backend.admin.delete_key(&card.id).await.unwrap();

    let report = phone.core.sync().await.expect("second sync");
    assert_eq!((report.upserted, report.deleted), (1, 1));
    let keys = phone.core.keys().unwrap();
    assert_eq!(keys.len(), 1, "the deleted key is gone");
    assert_eq!(keys[0].valid_to, new_end);
    assert_eq!(keys[0].description, "Hire shortened");
    assert_eq!(keys[0].version, edited.version);
    assert!(matches!(phone.core.key(&card.id), Err(Error::KeyNotFound { .. })));
}

#[tokio::test]
async fn expired_and_upcoming_keys_are_shown_but_never_usable() {
    let backend = Backend::start().await;
    let (op, phone) = enrolled(&backend, "+47 412 10 002").await;
    let m = backend.machine("Telehandler").await;
    let now = opkey_e2e::now_seconds(backend.clock.as_ref());
    let create = |from: Duration, to: Duration| opkey_protocol::api::CreateKey {
        operator_id: Some(op.clone()),
        machine_ids: vec![m.id.clone()],
        access_type: AccessType::DigitalKey,
        valid_from: now + from,
        valid_to: now + to,
        description: String::new(),
        card_id: None,
        static_pin: None,
        pin_algorithm: None,
        pin_digits: None,
        pin_period_s: None,
    };
    let ended = backend
        .admin
        .create_key(&create(-Duration::days(10), -Duration::days(1)))
        .await
        .unwrap();
    let upcoming = backend
        .admin
        .create_key(&create(Duration::days(2), Duration::days(5)))
        .await
        .unwrap();
    let active = backend
        .admin
        .create_key(&create(-Duration::hours(1), Duration::days(5)))
        .await
        .unwrap();
    let revoked = backend
        .admin
        .create_key(&create(-Duration::hours(1), Duration::days(5)))
        .await
        .unwrap();
    backend.admin.revoke_key(&revoked.id).await.unwrap();

    phone.core.sync().await.unwrap();
    let state = |id: &str| phone.core.key(id).unwrap();
    assert_eq!(state(&ended.id).state, KeyState::Expired);
    assert_eq!(state(&upcoming.id).state, KeyState::Upcoming);
    assert_eq!(state(&active.id).state, KeyState::Active);
    assert_eq!(state(&revoked.id).state, KeyState::Revoked);
    let usable: Vec<String> = phone
        .core
        .keys()
        .unwrap()
        .into_iter()
        .filter(|k| k.usable)
        .map(|k| k.id)
        .collect();
    assert_eq!(usable, vec![active.id.clone()]);
    assert_eq!(phone.core.status().unwrap().usable_key_count, 1);
}

#[tokio::test]
async fn keys_survive_an_app_restart_and_work_with_the_server_gone() {
    let backend = Backend::start().await;
    let (op, phone) = enrolled(&backend, "+47 412 10 003").await;
    let m = backend.machine("Excavator").await;
    backend.personal_key(&op, &m.id, AccessType::DigitalKey, 3).await;
    phone.core.sync().await.unwrap();
    let before = phone.core.keys().unwrap();

    let Backend { server, dir, .. } = backend;
    server.shutdown().await;
    drop(dir);
    let phone = phone.restart();

    assert_eq!(phone.core.keys().unwrap(), before);
    assert!(phone.core.status().unwrap().enrolled);
    let err = phone.core.sync().await.unwrap_err();
    assert!(matches!(err, Error::Network { .. } | Error::Timeout), "{err:?}");
    assert_eq!(phone.core.keys().unwrap(), before, "a failed sync keeps the keys");
}

#[tokio::test]
async fn a_server_that_fails_mid_sync_leaves_the_phone_store_unchanged() {
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let (op, invitation) = backend.invited_operator("Ola", "+47 412 10 004").await;
    let phone = Phone::for_server(&proxy.url);
    phone
        .core
        .redeem_invite(&invitation.link)
        .await
        .expect("redeem through the proxy");
    let m = backend.machine("Excavator").await;
    let first = backend
        .personal_key(&op.operator.id, &m.id, AccessType::DigitalKey, 3)
        .await;
    phone.core.sync().await.unwrap();
    // New changes wait on the server; every sync attempt below is spoiled.
    backend
        .personal_key(&op.operator.id, &m.id, AccessType::RollingPin, 3)
        .await;
    backend
        .admin
        .edit_key(
            &first.id,
            &EditKey {
                valid_to: None,
                description: Some("changed".into()),
            },
        )
        .await
        .unwrap();
    let keys_before = phone.core.keys().unwrap();
    let status_before = phone.core.status().unwrap();

    // A server error, a server that never answers, an answer cut short, an answer that
    // is not JSON.
    for fault in [
        NetFault::Status(500),
        NetFault::NoAnswer,
        NetFault::Truncate,
        NetFault::GarbageBody,
    ] {
        proxy.set(Rule::new("/v1/sync", Schedule::Always(fault)));
        let err = phone.core.sync().await.expect_err("a spoiled sync fails");
        match fault {
            NetFault::Status(_) => assert!(matches!(err, Error::Server { status: 500, .. }), "{err:?}"),
            NetFault::NoAnswer => assert!(matches!(err, Error::Timeout), "{err:?}"),
            NetFault::GarbageBody => assert!(matches!(err, Error::BadResponse { .. }), "{err:?}"),
            _ => assert!(
                matches!(err, Error::BadResponse { .. } | Error::Network { .. }),
                "{fault:?}: {err:?}"
            ),
        }
        let applied = proxy
            .journal()
            .iter()
            .any(|e| e.path.starts_with("/v1/sync") && e.fault == fault);
        assert!(applied, "{fault:?} was never applied");
        assert_eq!(
            phone.core.keys().unwrap(),
            keys_before,
            "{fault:?} changed the keys"
        );
        let status = phone.core.status().unwrap();
        assert_eq!(status.cursor, status_before.cursor, "{fault:?} moved the cursor");
        assert_eq!(
            status.last_sync_at, status_before.last_sync_at,
            "{fault:?} recorded a sync"
        );
    }

    proxy.clear();
    let report = phone.core.sync().await.expect("the network is back");
    assert_eq!(report.upserted, 2);
    assert_eq!(phone.core.keys().unwrap().len(), 2);
}

#[tokio::test]
async fn a_passing_server_error_is_retried_and_the_sync_succeeds() {
    let backend = Backend::start().await;
    let proxy = NetFaultProxy::start(backend.url()).await;
    let (op, invitation) = backend.invited_operator("Ola", "+47 412 10 005").await;
    let phone = Phone::for_server(&proxy.url);
    phone.core.redeem_invite(&invitation.link).await.unwrap();
    let m = backend.machine("Excavator").await;
    backend
        .personal_key(&op.operator.id, &m.id, AccessType::DigitalKey, 3)
        .await;

    let server_error = NetFault::Status(500);
    proxy.set(Rule::new(
        "/v1/sync",
        Schedule::Script(vec![server_error, server_error]),
    ));
    let report = phone.core.sync().await.expect("retries get through");
    assert_eq!(report.upserted, 1);
    assert_eq!(proxy.spoiled(), 2);
    // The two errors came from the proxy; the third try reached the backend.
    let syncs: Vec<(NetFault, bool)> = proxy
        .journal()
        .iter()
        .filter(|e| e.path.starts_with("/v1/sync"))
        .map(|e| (e.fault, e.forwarded))
        .collect();
    assert_eq!(
        syncs,
        vec![
            (server_error, false),
            (server_error, false),
            (NetFault::Pass, true)
        ]
    );
}

#[tokio::test]
async fn the_phone_database_holds_no_secret_in_plaintext() {
    // A real SMS provider, not the dev outbox (which keeps messages for reading locally).
    let provider = FakeSmsProvider::start().await;
    let sms = HttpSmsConfig::new(provider.url.clone());
    let backend = Backend::start_with(move |c| c.sms = SmsConfig::Http(sms)).await;
    let op = backend
        .admin
        .create_operator(&opkey_protocol::api::CreateOperator {
            name: "Ola".into(),
            phone: "+47 412 10 006".into(),
            access_type: None,
            send_invite: true,
        })
        .await
        .unwrap();
    let invitation = Invitation::from_text(&provider.last_text_to("+4741210006").expect("SMS sent"));
    let phone = Phone::new();
    phone.core.redeem_invite(&invitation.link).await.unwrap();
    let m = backend.machine("Excavator").await;
    backend
        .personal_key(&op.operator.id, &m.id, AccessType::DigitalKey, 3)
        .await;
    phone.core.sync().await.unwrap();

    let bytes = all_bytes_under(phone.dir.path());
    assert!(!bytes.is_empty());
    assert!(
        !contains(&bytes, invitation.token().as_bytes()),
        "invite token in plaintext"
    );
    let code = invitation.code.replace('-', "");
    assert!(!contains(&bytes, code.as_bytes()), "invite code in plaintext");
    use opkey_core::SecretStore as _;
    let data_key = phone
        .secrets
        .load(opkey_core::secrets::DATA_KEY_NAME)
        .unwrap()
        .expect("the platform holds the data key");
    assert!(
        !contains(&bytes, &data_key),
        "the platform's data key leaked into the phone's files"
    );
    // The backend keeps digests only.
    let server_bytes = all_bytes_under(backend.dir.path());
    assert!(
        !contains(&server_bytes, invitation.token().as_bytes()),
        "backend stores the token"
    );
    assert!(
        !contains(&server_bytes, opkey_e2e::ADMIN_TOKEN.as_bytes()),
        "backend stores the admin token"
    );
}

#[tokio::test]
async fn one_operator_in_two_organizations_gets_keys_from_both() {
    let backend = Backend::start().await;
    let org_a = backend.admin.create_organization("Alpha Hire").await.unwrap();
    let org_b = backend.admin.create_organization("Beta Build").await.unwrap();
    let alpha = backend.admin.clone().in_organization(Some(org_a.id.clone()));
    let beta = backend.admin.clone().in_organization(Some(org_b.id.clone()));
    let create = |send_invite| opkey_protocol::api::CreateOperator {
        name: "Ola".into(),
        phone: "+47 412 10 007".into(),
        access_type: None,
        send_invite,
    };
    let in_a = alpha.create_operator(&create(false)).await.unwrap();
    let in_b = beta.create_operator(&create(true)).await.unwrap();
    assert_eq!(
        in_a.operator.id, in_b.operator.id,
        "the same person in both organizations"
    );

    let invitation = opkey_e2e::Invitation::from_sms(&backend.latest_sms_to("+47 412 10 007").await);
    let phone = Phone::new();
    let enrollment = phone.core.redeem_invite(&invitation.link).await.unwrap();
    assert_eq!(enrollment.organizations.len(), 2);

    let now = backend.clock.now();
    for (admin, name) in [(&alpha, "Alpha excavator"), (&beta, "Beta crane")] {
        let m = admin
            .create_machine(&opkey_protocol::api::CreateMachine {
                name: name.into(),
                serial: String::new(),
                unit_type: None,
                keypad: None,
                ble_public_key: None,
            })
            .await
            .unwrap();
        admin
            .create_key(&personal_key_request(
                &in_a.operator.id,
                &m.id,
                AccessType::DigitalKey,
                now - Duration::hours(1),
                now + Duration::days(1),
                "",
            ))
            .await
            .unwrap();
    }
    phone.core.sync().await.unwrap();
    let mut orgs: Vec<String> = phone
        .core
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| k.organization_name)
        .collect();
    orgs.sort();
    assert_eq!(orgs, vec!["Alpha Hire", "Beta Build"]);
}
