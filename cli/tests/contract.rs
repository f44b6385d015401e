//! The CLI contract that scripts depend on: command names, flags, JSON fields, exit
//! statuses. Each test runs the real `opkey` binary against a backend on loopback.

use opkey_server::{RunningServer, ServerConfig};
use serde_json::Value;
use std::process::{Command, Output};

const TOKEN: &str = "contract-admin-token";

struct Env {
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    server: Option<RunningServer>,
    url: String,
    runtime: tokio::runtime::Runtime,
}

impl Env {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path().join("backend.db"), TOKEN.to_owned());
        let server = runtime
            .block_on(opkey_server::start(config, ([127, 0, 0, 1], 0).into()))
            .unwrap();
        let url = server.url().as_str().trim_end_matches('/').to_owned();
        let home = dir.path().join("home");
        Self {
            _dir: dir,
            home,
            server: Some(server),
            url,
            runtime,
        }
    }

    fn admin(&self, args: &[&str]) -> Output {
        let mut all = vec!["admin", "--server", &self.url, "--token", TOKEN];
        all.extend_from_slice(args);
        opkey(&all)
    }

    fn admin_json(&self, args: &[&str]) -> Value {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", text(&out)))
    }

    fn phone(&self, args: &[&str]) -> Output {
        let home = self.home.to_str().unwrap();
        let mut all = vec!["--home", home];
        all.extend_from_slice(args);
        opkey(&all)
    }

    /// `admin operator create --invite` for `name` at `phone`.
    fn invited_operator(&self, name: &str, phone: &str) -> Value {
        self.admin_json(&[
            "operator", "create", "--name", name, "--phone", phone, "--invite", "--json",
        ])
    }

    /// `admin key create` of `kind` for `operator` on `machine`, valid 2026–2099, with `extra`.
    fn create_key(&self, operator: &str, machine: &str, kind: &str, extra: &[&str]) -> Value {
        let mut args = vec![
            "key",
            "create",
            "--operator",
            operator,
            "--machine",
            machine,
            "--type",
            kind,
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2099-01-01T00:00:00Z",
        ];
        args.extend_from_slice(extra);
        args.push("--json");
        self.admin_json(&args)
    }

    /// The phone redeems the invite link of the first SMS in the dev outbox.
    fn redeem_first_invite(&self) {
        let outbox = self.admin_json(&["sms", "list", "--json"]);
        let body = outbox[0]["body"].as_str().unwrap().to_owned();
        let link = body
            .split_whitespace()
            .find(|w| w.contains("/i/"))
            .unwrap()
            .trim_end_matches(['.', ',']);
        let out = self.phone(&["invite", link]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn opkey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opkey"))
        .args(args)
        .env_remove("OPKEY_HOME")
        .output()
        .expect("opkey runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

#[test]
fn an_admin_script_creates_operator_machine_and_key_and_reads_the_sms() {
    let env = Env::start();
    let op = env.admin_json(&[
        "operator",
        "create",
        "--name",
        "Ola Nordmann",
        "--phone",
        "+47 412 34 567",
        "--invite",
        "--json",
    ]);
    let op_id = id(&op);
    assert_eq!(op["phone"], "+4741234567");
    let machine = env.admin_json(&["machine", "create", "--name", "Excavator EX-210", "--json"]);
    let machine_id = id(&machine);
    let key = env.admin_json(&[
        "key",
        "create",
        "--operator",
        &op_id,
        "--machine",
        &machine_id,
        "--type",
        "digital-key",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2099-01-01T00:00:00Z",
        "--json",
    ]);
    let key_id = id(&key);
    assert_eq!(key["access_type"], "digital-key");

    let outbox = env.admin_json(&["sms", "list", "--json"]);
    let sms = &outbox.as_array().unwrap()[0];
    assert_eq!(sms["recipient"], "+4741234567");
    assert!(sms["body"].as_str().unwrap().contains("/i/"));

    let edited = env.admin(&[
        "key",
        "edit",
        &key_id,
        "--to",
        "2098-01-01T00:00:00Z",
        "--description",
        "Site North",
    ]);
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    let deleted = env.admin(&["key", "delete", &key_id]);
    assert!(deleted.status.success());
    let keys = env.admin_json(&["key", "list", "--json"]);
    assert!(keys.as_array().unwrap().is_empty());
}

#[test]
fn an_operator_enrolls_syncs_and_lists_keys_from_the_command_line() {
    let env = Env::start();
    let op = env.invited_operator("Ola", "+47 412 00 100");
    let machine = env.admin_json(&["machine", "create", "--name", "Telehandler", "--json"]);
    env.create_key(&id(&op), &id(&machine), "rolling-pin", &[]);
    env.redeem_first_invite();
    let out = env.phone(&["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.phone(&["keys", "--json"]);
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["access_type"], "rolling-pin");
    assert_eq!(keys[0]["state"], "active");
    let status = env.phone(&["status"]);
    assert!(text(&status).contains("Enrolled as Ola"), "{}", text(&status));
}

#[test]
fn a_link_from_a_foreign_host_is_refused_with_a_hint_and_exit_status_2() {
    let env = Env::start();
    let out = env.phone(&["invite", "https://evil.example.net/i/AAAAAAAAAAAAAAAAAAAAAA"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("evil.example.net"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_fails_with_exit_status_3_and_says_what_to_do() {
    let out = opkey(&[
        "admin",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "x",
        "operator",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the server") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn bulk_upload_imports_selected_rows_and_reports_the_rest() {
    let env = Env::start();
    let file = env.home.parent().unwrap().join("operators.csv");
    std::fs::write(
        &file,
        "name,phone\nOla,+47 412 00 201\nKari,12345\nPer,+47 412 00 203\n",
    )
    .unwrap();
    let out = env.admin(&[
        "operator",
        "import",
        file.to_str().unwrap(),
        "--select",
        "2-3",
        "--invite",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = text(&out);
    assert!(report.contains("row 2: imported Ola"), "{report}");
    assert!(report.contains("row 3: phone"), "{report}");
    let ops = env.admin_json(&["operator", "list", "--json"]);
    assert_eq!(ops.as_array().unwrap().len(), 1);
}

#[test]
fn the_demo_tells_the_whole_story_and_exits_0() {
    let out = opkey(&["demo"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let story = text(&out);
    for beat in [
        "Backend",
        "SMS",
        "enrolled as Ola Nordmann",
        "synced again",
        "cold (full grant)",
        "warm (key id only)",
        "usage session 1",
        "REFUSED by the machine: revoked",
        "the phone itself refuses, before any radio",
        "usage events the phones uploaded",
        "with no network on either side: unlocked",
        "took its keypad table",
        "reads her Rolling PIN for Telehandler TH-14 offline",
        "s more (slot ",
        "types it: accepted, relay ON, usage session",
        "recorded with key",
        "REFUSED: this PIN was already used",
        "REFUSED: wrong PIN",
        "the fourth locked the keypad for 30 s",
        "typed during the lockout: REFUSED: locked for",
        "Done",
    ] {
        assert!(story.contains(beat), "missing '{beat}' in:\n{story}");
    }
}

/// A machine unit serving the local socket on loopback inside the test's runtime, as
/// `opkey-machine run --provision FILE --listen ADDR` would: its key made here, registered
/// with `admin machine create --ble-public-key`, its bundle written by
/// `admin machine provisioning --output`.
fn running_machine(env: &Env, name: &str) -> (String, String) {
    let dir = env.home.parent().unwrap().join(format!("unit-{}", name.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("machine.key");
    let public_key = opkey_machine::generate_key_file(&key_file, &ring::rand::SystemRandom::new()).unwrap();
    let machine = env.admin_json(&[
        "machine",
        "create",
        "--name",
        name,
        "--ble-public-key",
        &public_key,
        "--json",
    ]);
    let bundle_file = dir.join("bundle.json");
    let out = env.admin(&[
        "machine",
        "provisioning",
        &id(&machine),
        "--output",
        bundle_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = opkey_machine::read_provisioning(&bundle_file).unwrap();
    let unit = opkey_machine::Machine::new(
        &bundle,
        opkey_machine::read_key_file(&key_file).unwrap(),
        Box::new(opkey_machine::MemoryStore::new()),
    )
    .unwrap();
    let listener = env
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    env.runtime.spawn(opkey_machine::socket::serve(
        listener,
        std::sync::Arc::new(std::sync::Mutex::new(unit)),
        opkey_machine::socket::ServeOptions::new(std::sync::Arc::new(opkey_protocol::SystemClock)),
        std::sync::Arc::new(|_: &opkey_machine::MachineEvent| {}),
    ));
    (id(&machine), address)
}

#[test]
fn an_operator_unlocks_and_locks_a_local_machine_by_name_and_scripts_read_the_report() {
    let env = Env::start();
    let (machine_id, address) = running_machine(&env, "Excavator EX-210");
    let op = env.invited_operator("Ola", "+47 412 00 300");
    env.create_key(&id(&op), &machine_id, "digital-key", &[]);
    env.redeem_first_invite();

    let out = env.phone(&["unlock", "excavator ex-210", "--via", &address, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["command"], "unlock");
    assert_eq!(report["outcome"]["outcome"], "unlocked");
    assert_eq!(report["outcome"]["relock_after_s"], 120);
    assert_eq!(report["machine_id"], machine_id.as_str());
    assert_eq!(report["full_grant_sent"], true);
    assert_eq!(report["round_trips"], 1);

    let settings: Value =
        serde_json::from_slice(&std::fs::read(env.home.join("settings.json")).unwrap()).unwrap();
    assert_eq!(settings["machine_addresses"][0], address.as_str());

    // The address is remembered; people read a sentence.
    let out = env.phone(&["unlock", &machine_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text(&out).contains("Unlocked Excavator EX-210: start the engine within 120 s"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("warm (key id only)"), "{}", text(&out));
    let out = env.phone(&["lock", "Excavator EX-210"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text(&out).contains("Locked Excavator EX-210"), "{}", text(&out));

    let out = env.phone(&["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events = env.admin_json(&["events", "list", "--machine", &machine_id, "--json"]);
    let outcomes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unlocked", "unlocked", "locked"]);
}

#[test]
fn an_unlock_that_cannot_reach_the_machine_exits_4_with_a_hint() {
    let env = Env::start();
    let (machine_id, _) = running_machine(&env, "Telehandler");
    let op = env.invited_operator("Ola", "+47 412 00 301");
    env.create_key(&id(&op), &machine_id, "digital-key", &[]);
    env.redeem_first_invite();

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_address = dead.local_addr().unwrap().to_string();
    drop(dead);
    let out = env.phone(&["unlock", "Telehandler", "--via", &dead_address]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not in range") && err.contains("within a few metres"),
        "{err}"
    );

    let out = env.phone(&["unlock", "Telehandler", "--ble"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("this build has no Bluetooth support"));
}

/// An enrolled, synced phone holding a Rolling PIN key (8 digits, 30 s), a personal Static
/// PIN key and a Digital Key; returns (rolling, static, digital) key ids.
fn phone_with_pin_keys(env: &Env) -> (String, String, String) {
    let op = env.invited_operator("Pia", "+47 412 00 321");
    let machine = env.admin_json(&[
        "machine", "create", "--name", "Dumper", "--keypad", "dual-id", "--json",
    ]);
    let key = |kind: &str, extra: &[&str]| env.create_key(&id(&op), &id(&machine), kind, extra);
    let rolling = key(
        "rolling-pin",
        &[
            "--pin-digits",
            "8",
            "--pin-period",
            "30",
            "--pin-algorithm",
            "sha512",
        ],
    );
    assert_eq!(rolling["rolling_pin"]["digits"], 8, "{rolling}");
    assert_eq!(rolling["rolling_pin"]["period_s"], 30, "{rolling}");
    assert_eq!(rolling["rolling_pin"]["algorithm"], "sha512", "{rolling}");
    let fixed = key("static-pin", &["--static-pin", "73914862"]);
    let digital = key("digital-key", &[]);
    env.redeem_first_invite();
    (id(&rolling), id(&fixed), id(&digital))
}

#[test]
fn the_pin_command_prints_the_rolling_pin_with_its_validity_as_json_and_text() {
    let env = Env::start();
    let (rolling, fixed, _) = phone_with_pin_keys(&env);
    let out = env.phone(&["pin", &rolling, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digits = pin["pin"].as_str().unwrap();
    assert_eq!(digits.len(), 3 + 8, "{pin}");
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    assert!(pin["valid_until"].as_str().unwrap().ends_with('Z'), "{pin}");
    let left = pin["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left), "{pin}");
    assert_eq!(pin["key_id"], rolling.as_str());
    assert_eq!(pin["period_s"], 30);
    assert_eq!(pin["digits"], 8);
    assert_eq!(pin["slot"].as_u64().unwrap(), digits[..3].parse::<u64>().unwrap());
    assert!(pin["clock_warning"].is_null());
    for field in ["valid_from", "accepted_until", "server_time"] {
        assert!(pin[field].is_string(), "{field} in {pin}");
    }

    let out = env.phone(&["pin", &rolling]);
    assert!(out.status.success());
    assert!(text(&out).contains(&digits[..3]), "{}", text(&out));
    assert!(text(&out).contains("valid"), "{}", text(&out));

    let out = env.phone(&["pin", &fixed, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fixed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fixed["pin"], "73914862");
}

#[test]
fn the_pin_command_fails_with_distinct_statuses_for_not_a_pin_key_and_not_synced() {
    let env = Env::start();
    let (rolling, _, digital) = phone_with_pin_keys(&env);
    let out = env.phone(&["pin", &digital, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("not a Rolling PIN"),
        "{err}"
    );

    let out = env.phone(&["pin", "no-such-key"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key no-such-key"));

    // The statuses are documented in the help (7, "not synced", is covered by the core's
    // tests: a phone holding the key but not its seed).
    let help = text(&opkey(&["--help"]));
    assert!(
        help.contains("6 not a PIN key") && help.contains("7 PIN not synced"),
        "{help}"
    );
    let out = env.phone(&["pin", &rolling, "--json"]);
    assert!(out.status.success());
}

#[test]
fn the_pin_watch_prints_one_json_line_per_pin() {
    use std::io::{BufRead, BufReader};
    let env = Env::start();
    let (rolling, _, _) = phone_with_pin_keys(&env);
    let home = env.home.to_str().unwrap().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_opkey"))
        .args(["--home", &home, "pin", &rolling, "--watch", "--json"])
        .env_remove("OPKEY_HOME")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let pin: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(pin["key_id"], rolling.as_str());
    assert_eq!(pin["pin"].as_str().unwrap().len(), 11);
}
