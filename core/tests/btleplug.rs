//! The btleplug transport against a mock BlueZ that serves the machine simulator's GATT
//! service (tests/ble/run starts the private bus, the mock and `opkey-machine run`).
//!
//! Needs `DBUS_SYSTEM_BUS_ADDRESS` (the private bus), `OPKEY_BLE_BUNDLE` (the machine's
//! provisioning bundle) and `OPKEY_BLE_ISSUER_KEY` (the issuer's PKCS#8 key, to sign a
//! grant the machine accepts). Without them the test says so and passes, unless
//! `OPKEY_BLE_REQUIRED` is set (as tests/ble/run does).
#![cfg(feature = "btleplug")]

use opkey_core::unlock::{BleConnection, BleTransport, BtleplugTransport, TransportError};
use opkey_protocol::api::MachineProvisioning;
use opkey_protocol::ble::advert::SERVICE_UUID_STR;
use opkey_protocol::ble::test_support::{PhoneKey, grant_body};
use opkey_protocol::ble::{
    Command, Credential, Grant, PhoneUnlock, PhoneUnlockParams, Reassembler, UnlockOutcome, fragment,
    machine_tag,
};
use opkey_protocol::encoding::unb64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::time::Duration;
use time::OffsetDateTime;

const KEY_ID: &str = "key_bleeeeeeeeeeeeee";
const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    provisioning: MachineProvisioning,
    issuer: EcdsaKeyPair,
}

fn setup() -> Option<Setup> {
    let (Ok(_), Ok(bundle), Ok(issuer)) = (
        std::env::var("DBUS_SYSTEM_BUS_ADDRESS"),
        std::env::var("OPKEY_BLE_BUNDLE"),
        std::env::var("OPKEY_BLE_ISSUER_KEY"),
    ) else {
        assert!(
            std::env::var_os("OPKEY_BLE_REQUIRED").is_none(),
            "OPKEY_BLE_REQUIRED is set but the mock BlueZ is not described"
        );
        eprintln!("no mock BlueZ (run tests/ble/run): skipped");
        return None;
    };
    let provisioning = serde_json::from_slice(&std::fs::read(bundle).expect("bundle")).expect("bundle JSON");
    let pkcs8 = std::fs::read(issuer).expect("issuer key");
    let issuer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &SystemRandom::new())
        .expect("issuer key is P-256 PKCS#8");
    Some(Setup { provisioning, issuer })
}

/// Reads notifications until one message is whole.
async fn receive(transport: &BtleplugTransport, connection: BleConnection, fragments: &mut usize) -> Vec<u8> {
    let mut reassembler = Reassembler::new();
    loop {
        let notification = transport
            .next_notification(connection.handle, WAIT)
            .await
            .expect("a notification");
        assert!(
            notification.len() <= usize::from(connection.att_mtu) - 3,
            "a notification fits the MTU"
        );
        *fragments += 1;
        if let Some(message) = reassembler.push(&notification).expect("well-framed") {
            return message;
        }
    }
}

/// One connection, one exchange (PROTOCOL.md 2.6): Hello, signed request, answer.
async fn exchange(
    transport: &BtleplugTransport,
    peripheral_id: &str,
    machine: &MachineProvisioning,
    phone: &PhoneKey,
    command: Command,
    credential: Credential,
) -> UnlockOutcome {
    let rng = SystemRandom::new();
    let connection = transport
        .connect(peripheral_id.to_owned(), WAIT)
        .await
        .expect("connect");
    assert_eq!(connection.att_mtu, 23, "the MTU BlueZ publishes");
    transport.subscribe(connection.handle).await.expect("subscribe");

    let (mut sent, mut received) = (0usize, 0usize);
    let hello = receive(transport, connection, &mut received).await;
    let mut unlock = PhoneUnlock::new(
        PhoneUnlockParams {
            machine_id: machine.machine_id.clone(),
            machine_public_key: unb64(&machine.machine_public_key).expect("machine key"),
            command,
            credential,
            revocations: None,
        },
        OffsetDateTime::now_utc(),
    )
    .expect("the grant opens the machine");
    let needed = unlock.on_hello(&hello, &rng).expect("the Hello is the machine's");
    let request = unlock
        .on_signature(phone.sign(&needed.transcript))
        .expect("request");
    for piece in fragment(&request, connection.att_mtu).expect("fragments") {
        assert!(piece.len() <= 20);
        transport.write(connection.handle, piece).await.expect("write");
        sent += 1;
    }
    let answer = receive(transport, connection, &mut received).await;
    let outcome = unlock.on_result(&answer).expect("a Result");
    eprintln!(
        "{command:?} over btleplug: {sent} fragments written, {received} notified, MTU 23: {outcome:?}"
    );

    transport.disconnect(connection.handle).await.expect("disconnect");
    // Disconnecting twice, or using a closed handle, is harmless or typed.
    transport.disconnect(connection.handle).await.expect("again");
    assert_eq!(
        transport
            .write(connection.handle, vec![0xc0, 0, 0])
            .await
            .unwrap_err(),
        TransportError::Disconnected
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_unlock_then_a_warm_lock_run_over_btleplug_and_a_mock_bluez() {
    let Some(Setup { provisioning, issuer }) = setup() else {
        return;
    };
    let machine_id = provisioning.machine_id.clone();
    let phone = PhoneKey::new();
    let from = (OffsetDateTime::now_utc().unix_timestamp() - 60) as u64;
    let body = grant_body(KEY_ID, &phone, &[&machine_id], from, from + 3600);
    let grant = Grant::sign(body, &issuer, &SystemRandom::new()).expect("grant signs");

    let transport = BtleplugTransport::new().await.expect("the mock adapter");

    // A scan for another machine's tag finds nothing (and waits out its timeout).
    let nobody = transport
        .scan(
            SERVICE_UUID_STR.to_owned(),
            vec![machine_tag("mch_nobodynobodynobo")],
            Duration::from_millis(300),
        )
        .await
        .expect("scan");
    assert!(nobody.is_empty());

    let seen = transport
        .scan(SERVICE_UUID_STR.to_owned(), vec![machine_tag(&machine_id)], WAIT)
        .await
        .expect("scan");
    assert_eq!(seen.len(), 1, "the machine is seen once: {seen:?}");
    assert_eq!(seen[0].tag, machine_tag(&machine_id));
    assert_eq!(
        transport
            .connect("hci0/dev_00_00_00_00_00_00".into(), WAIT)
            .await
            .unwrap_err(),
        TransportError::NotFound
    );

    let cold = exchange(
        &transport,
        &seen[0].peripheral_id,
        &provisioning,
        &phone,
        Command::Unlock,
        Credential::Full {
            grant_bytes: grant.as_bytes().to_vec(),
        },
    )
    .await;
    assert!(matches!(cold, UnlockOutcome::Unlocked { .. }), "{cold:?}");

    // A second connection to the same machine: it holds the grant now.
    let warm = exchange(
        &transport,
        &seen[0].peripheral_id,
        &provisioning,
        &phone,
        Command::Lock,
        Credential::Cached {
            key_id: KEY_ID.into(),
        },
    )
    .await;
    assert!(matches!(warm, UnlockOutcome::Locked { .. }), "{warm:?}");
}
