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
    let op = env.admin_json(&[
        "operator",
        "create",
        "--name",
        "Ola",
        "--phone",
        "+47 412 00 100",
        "--invite",
        "--json",
    ]);
    let machine = env.admin_json(&["machine", "create", "--name", "Telehandler", "--json"]);
    env.admin_json(&[
        "key",
        "create",
        "--operator",
        &id(&op),
        "--machine",
        &id(&machine),
        "--type",
        "rolling-pin",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2099-01-01T00:00:00Z",
        "--json",
    ]);
    let outbox = env.admin_json(&["sms", "list", "--json"]);
    let body = outbox[0]["body"].as_str().unwrap().to_owned();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/i/"))
        .unwrap()
        .trim_end_matches(['.', ',']);

    let out = env.phone(&["invite", link]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
        "Done",
    ] {
        assert!(story.contains(beat), "missing '{beat}' in:\n{story}");
    }
}
