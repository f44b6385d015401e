//! Sync and store benchmark: the figures an admin with a large fleet feels.
//!
//! `cargo bench -p opkey-e2e --bench sync` creates one operator with N Digital Keys
//! (10,000; `OPKEY_BENCH_KEYS` for another size) through the admin API on a loopback
//! backend, on 20 machines with registered BLE keys (so every key also brings its signed
//! grant, and each machine its revocation list, in the sync), then measures, on the real
//! core, and prints one table against the targets:
//! - initial sync of all N keys (a fresh phone each time, median of 5);
//! - no-change delta sync (median of 30);
//! - store open + list N keys (median of 20).
//!
//! `-- --scaling` instead runs the same on fleets of 100, 1,000, 10,000 and 100,000 keys
//! (`OPKEY_BENCH_SCALING=100,1000` for others) and prints how sync time and store size
//! grow, with the exponent of each step (1.0 = linear; PERFORMANCE.md "Scaling").
//!
//! With `OPKEY_BENCH_ROWS` set the headline rows also go to `scripts/bench`'s table
//! (`support/budget.rs`); `OPKEY_BENCH_SHORT=1` takes fewer samples.

#[path = "support/budget.rs"]
mod budget;

use budget::Row;
use opkey_core::{CoreConfig, OpKey};
use opkey_e2e::{Backend, Invitation, Phone, personal_key_request};
use opkey_protocol::{AccessType, SystemClock};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Machines the keys are spread over.
const MACHINES: usize = 20;
/// Parallel admin clients creating the keys.
const CREATORS: usize = 8;
const PHONE_NUMBER: &str = "+47 412 60 001";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One operator holding `n` Digital Keys on a fresh backend.
struct Fleet {
    backend: Backend,
    operator_id: String,
    keys: usize,
}

impl Fleet {
    async fn new(n: usize) -> Self {
        let backend = Backend::start().await;
        let (op, _) = backend.invited_operator("Bench Operator", PHONE_NUMBER).await;
        let operator_id = op.operator.id;
        let mut machines = Vec::new();
        for i in 0..MACHINES {
            let unit = backend.registered_machine(&format!("Machine {i:02}")).await;
            machines.push(unit.id().to_owned());
        }
        let setup = Instant::now();
        let now = backend.clock.now();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..CREATORS {
            let admin = backend.admin.clone();
            let operator_id = operator_id.clone();
            let machines = machines.clone();
            tasks.spawn(async move {
                for i in (worker..n).step_by(CREATORS) {
                    admin
                        .create_key(&personal_key_request(
                            &operator_id,
                            &machines[i % machines.len()],
                            AccessType::DigitalKey,
                            now - time::Duration::hours(1),
                            now + time::Duration::days(30 + (i % 60) as i64),
                            format!("bench key {i}"),
                        ))
                        .await
                        .expect("key created");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("worker");
        }
        eprintln!("created {n} keys in {:.1} s", setup.elapsed().as_secs_f64());
        Self {
            backend,
            operator_id,
            keys: n,
        }
    }

    /// Initial syncs, each on a fresh phone (a re-invite replaces the previous one); the
    /// last phone stays for the other measurements.
    async fn initial_syncs(&self, samples: usize) -> (Duration, Phone) {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..samples {
            self.backend
                .admin
                .invite_operator(&self.operator_id)
                .await
                .expect("re-invite");
            let invitation = Invitation::from_sms(&self.backend.latest_sms_to(PHONE_NUMBER).await);
            let phone = Phone::with_app_timeouts();
            phone.core.redeem_invite(&invitation.link).await.expect("redeem");
            let t = Instant::now();
            let report = phone.core.sync().await.expect("initial sync");
            times.push(t.elapsed());
            assert_eq!(report.upserted as usize, self.keys);
            last = Some(phone);
        }
        (median(times), last.expect("a phone"))
    }
}

async fn delta_syncs(phone: &Phone, samples: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let report = phone.core.sync().await.expect("delta sync");
        times.push(t.elapsed());
        assert_eq!(report.upserted, 0);
    }
    median(times)
}

/// Closes the phone's core, then opens its store and lists the keys `samples` times.
/// Returns the median and the store's size on disk once closed.
fn open_and_list(phone: Phone, keys: usize, samples: usize) -> (Duration, u64) {
    let db = phone.db_path();
    let Phone {
        core, dir, secrets, ..
    } = phone;
    drop(core);
    let mut times = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let mut config = CoreConfig::new(dir.path());
        config.allow_loopback_invites = true;
        let core = OpKey::open(config, secrets.clone(), None, Arc::new(SystemClock)).expect("open");
        let listed = core.keys().expect("list");
        times.push(t.elapsed());
        assert_eq!(listed.len(), keys);
    }
    (median(times), database_bytes(&db))
}

/// Bytes of the SQLite database at `path` with its journal files (`-wal`, `-shm`).
fn database_bytes(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(name).ok()
        })
        .map(|meta| meta.len())
        .sum()
}

async fn budget(n: usize) {
    let fleet = Fleet::new(n).await;
    let (initial, phone) = fleet.initial_syncs(budget::samples(5, 2)).await;
    let delta = delta_syncs(&phone, budget::samples(30, 10)).await;
    let (open_list, _) = open_and_list(phone, n, budget::samples(20, 5));

    let rows = [
        (
            format!("initial sync, {n} keys with grants (loopback)"),
            initial,
            Duration::from_millis(1500),
        ),
        (
            "no-change delta sync".to_owned(),
            delta,
            Duration::from_millis(20),
        ),
        (
            format!("store open + list {n} keys"),
            open_list,
            Duration::from_millis(30),
        ),
    ];
    println!("\n| benchmark | median | target | |\n|---|---:|---:|---|");
    for (name, measured, target) in &rows {
        let verdict = if measured <= target { "ok" } else { "MISSED" };
        println!("| {name} | {} | ≤ {} | {verdict} |", ms(*measured), ms(*target));
    }
    budget::append(&rows.map(|(name, measured, target)| {
        Row::new(
            name,
            ms(measured),
            format!("≤ {}", ms(target)),
            measured <= target,
        )
    }));
}

/// One fleet size's figures.
struct Step {
    keys: usize,
    initial: Duration,
    delta: Duration,
    open_list: Duration,
    phone_bytes: u64,
    server_bytes: u64,
}

/// The exponent of growth from `a` to `b` over keys `ka` to `kb`: 1.0 is linear.
fn exponent(a: f64, b: f64, ka: usize, kb: usize) -> f64 {
    (b / a).ln() / (kb as f64 / ka as f64).ln()
}

async fn scaling(sizes: &[usize]) {
    let mut steps: Vec<Step> = Vec::new();
    for &n in sizes {
        let fleet = Fleet::new(n).await;
        // Medians of 5 (3 for the largest fleets, whose syncs take seconds).
        let (initial, phone) = fleet.initial_syncs(if n <= 10_000 { 5 } else { 3 }).await;
        let delta = delta_syncs(&phone, 10).await;
        let (open_list, phone_bytes) = open_and_list(phone, n, 5);
        let server_bytes = database_bytes(&fleet.backend.db_path());
        eprintln!("{n} keys: initial {}, store {}", ms(initial), mib(phone_bytes));
        steps.push(Step {
            keys: n,
            initial,
            delta,
            open_list,
            phone_bytes,
            server_bytes,
        });
    }
    println!(
        "\n| keys | initial sync | per key | exponent | no-change delta | store open + list | exponent | \
         phone store | per key | exponent | backend database |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut worst: f64 = 0.0;
    for (i, s) in steps.iter().enumerate() {
        let mut step_exponent = |pick: fn(&Step) -> f64| {
            if i == 0 {
                "—".to_owned()
            } else {
                let prev = &steps[i - 1];
                let e = exponent(pick(prev), pick(s), prev.keys, s.keys);
                worst = worst.max(e);
                format!("{e:.2}")
            }
        };
        let sync_e = step_exponent(|s| s.initial.as_secs_f64());
        let open_e = step_exponent(|s| s.open_list.as_secs_f64());
        let size_e = step_exponent(|s| s.phone_bytes as f64);
        println!(
            "| {} | {} | {:.1} µs | {sync_e} | {} | {} | {open_e} | {} | {:.0} B | {size_e} | {} |",
            s.keys,
            ms(s.initial),
            s.initial.as_secs_f64() * 1e6 / s.keys as f64,
            ms(s.delta),
            ms(s.open_list),
            mib(s.phone_bytes),
            s.phone_bytes as f64 / s.keys as f64,
            mib(s.server_bytes)
        );
    }
    // What an indexed store costs at best: N inserts or lookups of log N each.
    let n_log_n = match steps.as_slice() {
        [.., a, b] => {
            let (ka, kb) = (a.keys as f64, b.keys as f64);
            1.0 + (kb.ln() / ka.ln()).ln() / (kb / ka).ln()
        }
        _ => 1.0,
    };
    println!(
        "\nExponent: log(growth of the figure) / log(growth of the keys) from the row above; 1.0 is \
         linear, 2.0 quadratic. Largest: {worst:.2}. For comparison, N log N (a B-tree insert or \
         lookup per key) gives {n_log_n:.2} on the last step."
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--scaling") {
        let sizes: Vec<usize> = std::env::var("OPKEY_BENCH_SCALING")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|n| n.trim().parse().expect("a key count"))
                    .collect()
            })
            .unwrap_or_else(|| vec![100, 1_000, 10_000, 100_000]);
        scaling(&sizes).await;
        return;
    }
    let n: usize = std::env::var("OPKEY_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    budget(n).await;
}
