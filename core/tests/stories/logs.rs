//! The one story that installs the process-wide log forwarder. Other stories run at the
//! same time and log too, so the checks hold for every line, whoever logged it.

use super::*;
use crate::sync::fleet;
use fake::{Fault, OPERATOR};
use opkey_core::{LogLevel, LogRecord, LogSink, install_log_sink};
use opkey_protocol::api::RedeemRequest;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<LogRecord>>);

impl LogSink for Collect {
    fn log(&self, record: LogRecord) {
        self.0.lock().unwrap().push(record);
    }
}

struct IgnorePins;

impl opkey_core::PinListener for IgnorePins {
    fn on_pin(&self, _: opkey_core::PinView) {}
    fn on_stopped(&self, _: opkey_core::PinError) {}
}

impl Collect {
    fn records(&self) -> Vec<LogRecord> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_app_receives_the_cores_log_lines_at_its_level_and_never_a_secret() {
    let quiet = Arc::new(Collect::default());
    install_log_sink(quiet.clone(), LogLevel::Warn).unwrap();

    let (fake, phone) = backend_and_phone().await;
    let op = Arc::new(phone.open());
    let (link, _) = fake.invite(OPERATOR);
    op.redeem_invite(&link).await.unwrap();
    fleet(&fake);
    fake.sticky_fault("/v1/sync", Fault::Status(500));
    op.sync().await.unwrap_err();
    fake.clear_faults();
    op.sync().await.unwrap();

    let records = quiet.records();
    assert!(
        records.iter().all(|r| r.level <= LogLevel::Warn),
        "a line above the chosen level arrived: {records:#?}"
    );
    assert!(
        records.iter().any(|r| r.level == LogLevel::Warn
            && r.target == "opkey_core::sync::http"
            && r.message.starts_with("request failed")
            && r.message.contains(" path=/v1/sync")),
        "{records:#?}"
    );

    // A later call replaces the sink and the level.
    let verbose = Arc::new(Collect::default());
    install_log_sink(verbose.clone(), LogLevel::Debug).unwrap();
    let (_, code) = fake.invite("op_bob");
    op.redeem_invite(&code.display()).await.unwrap();
    op.sync().await.unwrap();

    let records = verbose.records();
    let ours: Vec<&LogRecord> = records
        .iter()
        .filter(|r| r.target.starts_with("opkey_core"))
        .collect();
    assert!(
        ours.iter()
            .any(|r| r.level == LogLevel::Info && r.message.starts_with("invite redeemed")),
        "{records:#?}"
    );
    assert!(
        ours.iter()
            .any(|r| r.level == LogLevel::Debug && r.message.starts_with("request ok")),
        "{records:#?}"
    );
    assert!(records.iter().all(|r| r.target.starts_with("opkey")));

    // A Rolling PIN key: its seed comes with a sync, the PIN is read and watched.
    let seed = b"a rolling pin seed of 32 bytes!!";
    fake.put_rolling_pin_key("k_pin", "op_bob", &["m1"], seed);
    op.sync().await.unwrap();
    let shown = op.pin("k_pin").unwrap();
    let watch = op.watch_pin_manually("k_pin", Arc::new(IgnorePins)).unwrap();
    watch.tick();
    watch.cancel();
    let records = verbose.records();

    // No line carries a secret: the invite token, the short code, an access token, a
    // signature, a PIN seed or a PIN.
    let token = link.rsplit('/').next().unwrap().to_owned();
    let mut secrets = vec![token, code.expose().to_owned(), code.display()];
    secrets.push(opkey_protocol::encoding::b64(seed));
    secrets.push(String::from_utf8_lossy(seed).into_owned());
    secrets.push(shown.pin.clone());
    secrets.extend(fake.with(|s| s.tokens.keys().cloned().collect::<Vec<_>>()));
    for sent in fake.requests_to("/v1/invites/redeem") {
        let request: RedeemRequest = serde_json::from_str(&sent.body).unwrap();
        secrets.push(request.signature);
    }
    assert!(secrets.len() >= 5);
    for record in quiet.records().iter().chain(&records) {
        for secret in &secrets {
            assert!(
                !record.message.contains(secret.as_str()),
                "a secret reached the log: {record:?}"
            );
        }
    }
}
