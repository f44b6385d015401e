//! Sync and store benchmark: prints one table of measured figures against their targets.
//!
//! `cargo bench -p opkey-e2e --bench sync` (set `OPKEY_BENCH_KEYS` for another fleet
//! size). It creates one operator with N Digital Keys through the admin API on a loopback
//! backend, on 20 machines with registered BLE keys (so every key also brings its signed
//! grant, and each machine its revocation list, in the sync), then measures, on the real
//! core:
//! - initial sync of all N keys (fresh phone, median of 5);
//! - no-change delta sync (median of 30);
//! - store open + list N keys (median of 20).

use opkey_core::{CoreConfig, OpKey};
use opkey_e2e::{Backend, Invitation, Phone};
use opkey_protocol::api::CreateKey;
use opkey_protocol::{AccessType, SystemClock};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("OPKEY_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let backend = Backend::start().await;
    let phone_number = "+47 412 60 001";
    let (op, _) = backend.invited_operator("Bench Operator", phone_number).await;
    let op_id = op.operator.id;
    let mut units = Vec::new();
    for i in 0..20 {
        units.push(backend.registered_machine(&format!("Machine {i:02}")).await);
    }
    let machines: Vec<String> = units.iter().map(|u| u.id().to_owned()).collect();

    let setup = Instant::now();
    let now = backend.clock.now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8usize {
        let admin = backend.admin.clone();
        let op_id = op_id.clone();
        let machines = machines.clone();
        tasks.spawn(async move {
            for i in (worker..n).step_by(8) {
                admin
                    .create_key(&CreateKey {
                        operator_id: Some(op_id.clone()),
                        machine_ids: vec![machines[i % machines.len()].clone()],
                        access_type: AccessType::DigitalKey,
                        valid_from: now - time::Duration::hours(1),
                        valid_to: now + time::Duration::days(30 + (i % 60) as i64),
                        description: format!("bench key {i}"),
                        card_id: None,
                        static_pin: None,
                        pin_algorithm: None,
                        pin_digits: None,
                        pin_period_s: None,
                    })
                    .await
                    .expect("key created");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("worker");
    }
    eprintln!("created {n} keys in {:.1} s", setup.elapsed().as_secs_f64());

    // Initial sync: a fresh phone each time (a re-invite replaces the previous one).
    let mut initial = Vec::new();
    let mut last_phone = None;
    for _ in 0..5 {
        backend.admin.invite_operator(&op_id).await.expect("re-invite");
        let invitation = Invitation::from_sms(&backend.latest_sms_to(phone_number).await);
        let phone = Phone::new();
        phone.core.redeem_invite(&invitation.link).await.expect("redeem");
        let t = Instant::now();
        let report = phone.core.sync().await.expect("initial sync");
        initial.push(t.elapsed());
        assert_eq!(report.upserted as usize, n);
        last_phone = Some(phone);
    }
    let phone = last_phone.expect("a phone");

    let mut delta = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let report = phone.core.sync().await.expect("delta sync");
        delta.push(t.elapsed());
        assert_eq!(report.upserted, 0);
    }

    let dir = phone.dir.path().to_owned();
    let secrets = phone.secrets.clone();
    drop(phone.core);
    let mut open_list = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let mut config = CoreConfig::new(&dir);
        config.allow_loopback_invites = true;
        let core = OpKey::open(config, secrets.clone(), None, Arc::new(SystemClock)).expect("open");
        let keys = core.keys().expect("list");
        open_list.push(t.elapsed());
        assert_eq!(keys.len(), n);
    }

    let rows = [
        (
            format!("initial sync, {n} keys with grants (loopback)"),
            median(initial),
            Duration::from_millis(1500),
        ),
        (
            "no-change delta sync".to_owned(),
            median(delta),
            Duration::from_millis(20),
        ),
        (
            format!("store open + list {n} keys"),
            median(open_list),
            Duration::from_millis(30),
        ),
    ];
    println!("\n| benchmark | median | target | |\n|---|---:|---:|---|");
    for (name, measured, target) in rows {
        let verdict = if measured <= target { "ok" } else { "MISSED" };
        println!("| {name} | {} | ≤ {} | {verdict} |", ms(measured), ms(target));
    }
}
