//! Crash consistency of the operator's process: the real `opkey` CLI is killed with
//! SIGKILL at a random moment while it redeems an invite, syncs, or uploads usage events.
//! After every kill the phone's store opens and passes `PRAGMA integrity_check`, the core
//! opens it the way the CLI does and reads its keys, the operator's next command (the
//! invite again, then `opkey sync`) succeeds, the phone's keys are the backend's, and
//! the backend holds every usage event the phone recorded exactly once.
//!
//! Kill delays come from a seeded generator (the seed is printed; rerun one with
//! `OPKEY_CRASH_SEED=<seed>`) and are spread over the operation's duration, measured on
//! clean runs first. 200 kills in all by default, split over the three operations;
//! `OPKEY_CRASH_RUNS=<n>` changes the total.
//!
//! The CLI is the `opkey` binary in this test's target folder, which `cargo test
//! --workspace` builds; the test builds it itself (with the cargo that built the test)
//! only when it is missing or older than its sources. `OPKEY_CLI_BIN=<path>` uses another.

use opkey_core::{CoreConfig, FileSecretStore, OpKey};
use opkey_e2e::fault_proxy::SplitMix64;
use opkey_e2e::{Backend, Invitation, MachineUnit};
use opkey_protocol::api::{CreateOperator, EditKey, EventSource};
use opkey_protocol::{AccessType, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Kills per operation when `OPKEY_CRASH_RUNS` is not set: 200 in all.
const DEFAULT_TOTAL: u32 = 200;

fn kills_for(share_percent: u32) -> u32 {
    let total = std::env::var("OPKEY_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(DEFAULT_TOTAL);
    (total * share_percent / 100).max(1)
}

fn seed(operation: &str) -> u64 {
    let seed = std::env::var("OPKEY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(11)
        });
    println!("{operation}: crash seed {seed} (rerun with OPKEY_CRASH_SEED={seed})");
    seed
}

/// The `opkey` binary next to this test (`<target>/<profile>/opkey`), built first when it
/// is missing or older than a source it is made from. (`cargo test --workspace` has built
/// it already; building it again here would resolve other features and rebuild.)
fn opkey_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("OPKEY_CLI_BIN") {
            return PathBuf::from(path);
        }
        // This test runs as <target>/<profile>/deps/crash-<hash>.
        let exe = std::env::current_exe().expect("the test knows its own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from <target>/<profile>/deps");
        let bin = profile_dir.join(format!("opkey{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the e2e crate is in the workspace");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let newest_source = [
            "cli",
            "core",
            "protocol",
            "server",
            "machine",
            "Cargo.toml",
            "Cargo.lock",
        ]
        .iter()
        .filter_map(|p| newest_mtime(&workspace.join(p)))
        .max();
        if built.is_none() || newest_source > built {
            let target_dir = profile_dir.parent().expect("a target folder");
            let mut build = Command::new(env!("CARGO"));
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "opkey-cli",
                    "--bin",
                    "opkey",
                    "--target-dir",
                ])
                .arg(target_dir)
                .current_dir(workspace);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let started = Instant::now();
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the opkey CLI failed: {status}");
            println!("built the opkey CLI in {:?}", started.elapsed());
        }
        assert!(bin.is_file(), "no CLI at {}", bin.display());
        bin
    })
}

/// The newest modification time of a file at or under `path`.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// How one run of the CLI ended.
#[derive(Debug)]
enum Ended {
    Killed,
    Exited(ExitStatus),
}

/// Starts `opkey args…` and sends it SIGKILL after `delay` unless it ended before.
fn run_and_kill(args: &[&str], delay: Duration) -> Ended {
    let mut child = opkey(args).spawn().expect("opkey starts");
    std::thread::sleep(delay);
    match child.try_wait().expect("the child can be waited on") {
        Some(status) => Ended::Exited(status),
        None => {
            // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no commit.
            child.kill().expect("SIGKILL delivered");
            child.wait().expect("the killed child is reaped");
            Ended::Killed
        }
    }
}

fn opkey(args: &[&str]) -> Command {
    let mut command = Command::new(opkey_binary());
    command
        .args(args)
        .env_remove("OPKEY_HOME")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs `opkey args…` to its end; panics with its stderr unless it succeeded.
fn run_ok(args: &[&str], context: &str) -> Duration {
    let started = Instant::now();
    let out = opkey(args).output().expect("opkey runs");
    assert!(
        out.status.success(),
        "{context}: opkey {:?} failed ({}): {}",
        args.first(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// One operator's installation folder (`opkey --home`).
#[derive(Debug)]
struct Home {
    dir: PathBuf,
}

impl Home {
    fn arg(&self) -> &str {
        self.dir.to_str().expect("a UTF-8 temporary path")
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--home", self.arg()];
        all.extend_from_slice(rest);
        all
    }

    /// The store survived: it passes SQLite's integrity check (when the kill left one at
    /// all), and the core opens it the way the CLI does and reads status, keys and outbox.
    fn check_store(&self, context: &str) {
        let db = self.dir.join(opkey_core::store::DB_FILE_NAME);
        if db.exists() {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .unwrap_or_else(|e| panic!("{context}: the store does not open: {e}"));
            let rows: Vec<String> = conn
                .prepare("PRAGMA integrity_check")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .unwrap_or_else(|e| panic!("{context}: integrity_check did not run: {e}"));
            assert_eq!(rows, vec!["ok".to_owned()], "{context}: the store is damaged");
        }
        let core = self.open_core(context);
        core.status()
            .unwrap_or_else(|e| panic!("{context}: status unreadable: {e}"));
        core.keys()
            .unwrap_or_else(|e| panic!("{context}: keys unreadable: {e}"));
        core.usage_events()
            .unwrap_or_else(|e| panic!("{context}: outbox unreadable: {e}"));
    }

    /// The core on this folder, configured as `opkey` configures it.
    fn open_core(&self, context: &str) -> OpKey {
        let mut config = CoreConfig::new(&self.dir);
        config.allow_loopback_invites = true;
        config.device_name = "opkey desktop".to_owned();
        let secrets = Arc::new(FileSecretStore::new(self.dir.join("secrets")));
        OpKey::open(config, secrets, None, Arc::new(SystemClock))
            .unwrap_or_else(|e| panic!("{context}: the core does not open the store: {e}"))
    }
}

/// A backend on loopback with a runtime of its own; the CLI runs as child processes.
struct World {
    backend: Backend,
    machine: Option<MachineUnit>,
    root: tempfile::TempDir,
    rng: SplitMix64,
    seed: u64,
    // Last: the backend and the machine are dropped while it still runs.
    runtime: tokio::runtime::Runtime,
}

impl World {
    fn start(operation: &str, with_machine: bool) -> Self {
        let seed = seed(operation);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let backend = runtime.block_on(Backend::start());
        let machine = with_machine.then(|| runtime.block_on(backend.registered_machine("Excavator EX-210")));
        opkey_binary();
        Self {
            backend,
            machine,
            root: tempfile::tempdir().expect("temporary folder"),
            rng: SplitMix64::new(seed),
            seed,
            runtime,
        }
    }

    fn home(&self, name: &str) -> Home {
        Home {
            dir: self.root.path().join(name),
        }
    }

    fn machine(&self) -> &MachineUnit {
        self.machine.as_ref().expect("this world has a machine")
    }

    /// A new operator with an SMS invite and a Digital Key on the machine (or on a
    /// machine of their own).
    fn invited_operator(&self, phone: &str) -> (String, Invitation) {
        self.runtime.block_on(async {
            let op = self
                .backend
                .admin
                .create_operator(&CreateOperator {
                    name: "Ola Nordmann".into(),
                    phone: phone.into(),
                    access_type: None,
                    send_invite: true,
                })
                .await
                .expect("operator created");
            let machine_id = match &self.machine {
                Some(m) => m.id().to_owned(),
                None => self.backend.machine(&format!("Loader {phone}")).await.id,
            };
            self.backend
                .personal_key(&op.operator.id, &machine_id, AccessType::DigitalKey, 30)
                .await;
            let sms = self.backend.latest_sms_to(phone).await;
            (op.operator.id, Invitation::from_sms(&sms))
        })
    }

    /// Draws a kill delay in `0..span`.
    fn delay(&mut self, span: Duration) -> Duration {
        Duration::from_micros(self.rng.below(span.as_micros().max(1) as u64))
    }

    /// After a kill: the store is sound, the operator's next sync succeeds, and the
    /// phone holds the backend's keys and the backend every usage event once.
    fn recover_and_check(&self, home: &Home, op: &str, context: &str) {
        home.check_store(context);
        run_ok(&home.args(&["sync"]), context);
        self.check_converged(home, op, context);
    }

    fn check_converged(&self, home: &Home, op: &str, context: &str) {
        let core = home.open_core(context);
        let mut on_phone: Vec<(String, u64)> = core
            .keys()
            .expect("keys")
            .into_iter()
            .map(|k| (k.id, k.version))
            .collect();
        let recorded: Vec<(String, bool)> = core
            .usage_events()
            .expect("outbox")
            .into_iter()
            .map(|e| (e.event.id, e.uploaded_at.is_some()))
            .collect();
        drop(core);
        let mut on_server = self
            .runtime
            .block_on(self.backend.admin.keys(Some(op), None))
            .expect("keys listed");
        on_phone.sort();
        on_server.sort_by(|a, b| a.id.cmp(&b.id));
        let on_server: Vec<(String, u64)> = on_server.into_iter().map(|k| (k.id, k.version)).collect();
        assert_eq!(
            on_phone, on_server,
            "{context}: the phone's keys are not the backend's"
        );

        assert!(
            recorded.iter().all(|(_, uploaded)| *uploaded),
            "{context}: a clean sync left events pending"
        );
        let at_backend = self.events_at_backend(op);
        let expected: BTreeMap<String, usize> = recorded.into_iter().map(|(id, _)| (id, 1)).collect();
        assert_eq!(
            at_backend, expected,
            "{context}: the backend does not hold every recorded usage event exactly once"
        );
    }

    /// The operator's usage events at the backend, by id, with how often each is there.
    fn events_at_backend(&self, op: &str) -> BTreeMap<String, usize> {
        let events = self
            .runtime
            .block_on(self.backend.admin.events(None, Some(op)))
            .expect("events listed");
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for e in events.into_iter().filter(|e| e.source == EventSource::Phone) {
            *count.entry(e.event.id).or_default() += 1;
        }
        count
    }

    /// `n` unlocks by the CLI, each leaving a usage event in the outbox.
    fn unlocks(&self, home: &Home, n: u64, context: &str) {
        let machine = self.machine();
        for _ in 0..n {
            run_ok(
                &home.args(&["unlock", machine.id(), "--via", &machine.address]),
                context,
            );
        }
    }
}

/// The middle of three clean runs: the span kill delays are drawn from.
fn measured(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// Tally of the attempts of one operation.
#[derive(Debug, Default)]
struct Tally {
    killed: u32,
    finished_first: u32,
    /// Where the kills landed, as the store and the backend tell afterwards.
    phases: BTreeMap<&'static str, u32>,
}

impl Tally {
    fn record(&mut self, ended: &Ended, context: &str) {
        match ended {
            Ended::Killed => self.killed += 1,
            Ended::Exited(status) => {
                assert!(status.success(), "{context}: the unkilled run failed: {status}");
                self.finished_first += 1;
            }
        }
    }

    fn phase(&mut self, ended: &Ended, phase: &'static str) {
        if matches!(ended, Ended::Killed) {
            *self.phases.entry(phase).or_default() += 1;
        }
    }

    fn check(&self, want: u32, seed: u64, operation: &str) {
        println!(
            "{operation}: {} kills, {} runs ended before their kill; kills landed: {:?}",
            self.killed, self.finished_first, self.phases
        );
        assert_eq!(self.killed, want, "seed {seed}: {operation} ran out of attempts");
    }
}

#[test]
fn killed_during_invite_redeem_the_phone_recovers_and_enrolls() {
    let want = kills_for(30);
    let mut world = World::start("invite", false);
    let seed = world.seed;
    let phone_number = |i: u32| format!("+4745{i:06}");

    let span = measured(
        (0..3)
            .map(|i| {
                let home = world.home(&format!("measure-{i}"));
                let (_, invitation) = world.invited_operator(&phone_number(900_000 + i));
                run_ok(&home.args(&["invite", &invitation.link]), "a clean invite")
            })
            .collect(),
    );
    println!("invite: a clean `opkey invite` takes {span:?}");

    let mut tally = Tally::default();
    let mut i = 0;
    while tally.killed < want {
        assert!(i < want * 4, "seed {seed}: too many runs ended before their kill");
        let context = format!("seed {seed}, invite run {i}");
        let home = world.home(&format!("phone-{i}"));
        let (op, invitation) = world.invited_operator(&phone_number(i));
        let delay = world.delay(span);
        let ended = run_and_kill(&home.args(&["invite", &invitation.link]), delay);
        tally.record(&ended, &context);
        let had_store = home.dir.join(opkey_core::store::DB_FILE_NAME).exists();
        home.check_store(&context);
        let status = home.open_core(&context).status().expect("status");
        tally.phase(
            &ended,
            match (
                had_store,
                status.pending_invite,
                status.enrolled,
                status.last_sync_at,
            ) {
                (false, ..) => "before the store existed",
                (_, true, ..) => "redeem in flight",
                (_, _, true, Some(_)) => "after the first sync",
                (_, _, true, None) => "enrolled, before the first sync",
                _ => "before the redeem",
            },
        );
        // The operator opens the same link again: the backend answers the same phone key
        // with the same enrollment.
        run_ok(&home.args(&["invite", &invitation.link]), &context);
        world.recover_and_check(&home, &op, &context);
        i += 1;
    }
    tally.check(want, seed, "invite");
}

#[test]
fn killed_during_sync_the_store_stays_sound_and_the_next_sync_converges() {
    let want = kills_for(35);
    let mut world = World::start("sync", true);
    let seed = world.seed;
    let home = world.home("phone");
    let (op, invitation) = world.invited_operator("+47 412 40 001");
    run_ok(&home.args(&["invite", &invitation.link]), "enrolling");
    let machine_id = world.machine().id().to_owned();

    // Between syncs the admin adds, edits and deletes keys, so each sync has pages to
    // fetch and a transaction to apply; now and then an unlock leaves an event to upload.
    let mut extra: Vec<String> = Vec::new();
    let mut change = |world: &mut World, round: u32| {
        let roll = world.rng.below(4);
        world.runtime.block_on(async {
            let admin = &world.backend.admin;
            match roll {
                0 | 1 if extra.len() < 12 => {
                    let kind = if roll == 0 {
                        AccessType::RollingPin
                    } else {
                        AccessType::DigitalKey
                    };
                    let key = world.backend.personal_key(&op, &machine_id, kind, 10).await;
                    extra.push(key.id);
                }
                2 if !extra.is_empty() => {
                    let id = extra.remove(0);
                    admin.delete_key(&id).await.expect("key deleted");
                }
                _ => {
                    if let Some(id) = extra.last() {
                        let edit = EditKey {
                            valid_to: None,
                            description: Some(format!("round {round}")),
                        };
                        admin.edit_key(id, &edit).await.expect("key edited");
                    }
                }
            }
        });
    };

    let mut runs = Vec::new();
    for round in 0..3 {
        change(&mut world, round);
        runs.push(run_ok(&home.args(&["sync"]), "a clean sync"));
    }
    let span = measured(runs);
    println!("sync: a clean `opkey sync` takes {span:?}");

    let mut tally = Tally::default();
    let mut i = 0;
    while tally.killed < want {
        assert!(i < want * 4, "seed {seed}: too many runs ended before their kill");
        let context = format!("seed {seed}, sync run {i}");
        change(&mut world, i + 3);
        change(&mut world, i + 3);
        if i % 4 == 0 {
            world.unlocks(&home, 1, &context);
        }
        let cursor = home.open_core(&context).status().expect("status").cursor;
        let delay = world.delay(span);
        let ended = run_and_kill(&home.args(&["sync"]), delay);
        tally.record(&ended, &context);
        home.check_store(&context);
        let moved = home.open_core(&context).status().expect("status").cursor != cursor;
        tally.phase(
            &ended,
            if moved {
                "after the commit"
            } else {
                "before the commit"
            },
        );
        world.recover_and_check(&home, &op, &context);
        i += 1;
    }
    tally.check(want, seed, "sync");
}

#[test]
fn killed_during_the_outbox_upload_no_usage_event_is_lost_or_stored_twice() {
    let want = kills_for(35);
    let mut world = World::start("upload", true);
    let seed = world.seed;
    let home = world.home("phone");
    let (op, invitation) = world.invited_operator("+47 412 40 002");
    run_ok(&home.args(&["invite", &invitation.link]), "enrolling");

    let mut runs = Vec::new();
    for _ in 0..3 {
        world.unlocks(&home, 3, "measuring");
        runs.push(run_ok(&home.args(&["sync"]), "a clean upload"));
    }
    let span = measured(runs);
    println!("upload: a clean `opkey sync` with 3 events to upload takes {span:?}");

    let mut tally = Tally::default();
    let mut i = 0;
    while tally.killed < want {
        assert!(i < want * 4, "seed {seed}: too many runs ended before their kill");
        let context = format!("seed {seed}, upload run {i}");
        let n = 1 + world.rng.below(3);
        world.unlocks(&home, n, &context);
        let delay = world.delay(span);
        let ended = run_and_kill(&home.args(&["sync"]), delay);
        tally.record(&ended, &context);
        home.check_store(&context);
        let pending: Vec<String> = home
            .open_core(&context)
            .usage_events()
            .expect("outbox")
            .into_iter()
            .filter(|e| e.uploaded_at.is_none())
            .map(|e| e.event.id)
            .collect();
        let stored = world.events_at_backend(&op);
        tally.phase(
            &ended,
            if pending.is_empty() {
                "after the outbox was marked"
            } else if pending.iter().any(|id| stored.contains_key(id)) {
                "stored by the backend, answer lost"
            } else {
                "before the upload"
            },
        );
        world.recover_and_check(&home, &op, &context);
        i += 1;
    }
    tally.check(want, seed, "upload");
}
