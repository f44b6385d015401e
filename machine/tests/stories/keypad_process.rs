//! `opkey-machine run --keypad-listen`: the keypad and card reader line protocol, and the
//! `opkey-machine keypad` client, against the process.

use crate::keypad::{CARD, PERSONAL_SEED, PERSONAL_SLOT, STATIC_PIN, pin_at, table_for};
use crate::support::{BIN, KEY, OPERATOR, keygen_public_key, run_command};
use opkey_protocol::api::MachineProvisioning;
use opkey_protocol::ble::test_support::Issuer;
use opkey_protocol::encoding::b64;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const MACHINE: &str = "mch_kkkkkkkkkkkkkkkk";
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a status line from opkey-machine")
    }

    /// Stops the process; returns everything it printed after what was read.
    fn stop(mut self) -> (Vec<String>, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let rest = self.lines.iter().collect();
        (rest, self.stderr.join().unwrap())
    }
}

fn client(addr: &str, entry: &str) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["keypad", "--connect", addr, entry])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_process_serves_the_keypad_line_protocol_and_the_client_reports_by_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("machine.key");
    let public_key = keygen_public_key(&key_file);

    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let issuer = Issuer::new();
    let provisioning = MachineProvisioning {
        machine_id: MACHINE.into(),
        name: "Scissor lift 3".into(),
        issuer_public_key: b64(issuer.public_key()),
        machine_public_key: public_key,
        challenge_lifetime_s: 10,
        relock_after_s: 120,
        revocations: None,
        server_url: None,
        keypad: Some(table_for(MACHINE, 1, now)),
    };
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, serde_json::to_vec(&provisioning).unwrap()).unwrap();

    let mut child = run_command(
        &bundle,
        &key_file,
        &dir.path().join("state.json"),
        &["--listen", "127.0.0.1:0", "--keypad-listen", "127.0.0.1:0"],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let machine = Running { child, lines, stderr };
    assert!(machine.next_line().starts_with("listening on "));
    let keypad_line = machine.next_line();
    let addr = keypad_line
        .strip_prefix("keypad listening on ")
        .unwrap_or_else(|| panic!("{keypad_line}"))
        .to_owned();

    // The client: one line, the answer printed, exit 0 when accepted.
    let pin = pin_at(PERSONAL_SEED, PERSONAL_SLOT, now);
    let (code, out) = client(&addr, &pin);
    assert_eq!(code, Some(0), "{out}");
    let answer: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        answer,
        json!({"accepted": true, "key_id": KEY, "operator_id": OPERATOR,
               "access_type": "rolling-pin", "usage_session": 1})
    );
    assert_eq!(
        machine.next_line(),
        format!("unlocked key={KEY} session=1 operator={OPERATOR} relock_after=120s")
    );
    assert_eq!(
        machine.next_line(),
        format!("keypad accepted key={KEY} access=rolling-pin session=1 operator={OPERATOR}")
    );

    // Refused: exit 5, the reason in snake case.
    let (code, out) = client(&addr, &pin);
    assert_eq!(code, Some(5), "{out}");
    let answer: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["accepted"], false);
    assert_eq!(answer["reason"], "already_used");
    assert!(answer.get("retry_after_s").is_none());
    assert_eq!(machine.next_line(), "keypad refused reason=already_used");

    // Several lines on one connection: a card, a Static PIN, wrong entries until locked out.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |line: &str| -> Value {
        writeln!(stream, "{line}").unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        assert!(answer.ends_with('\n') && !answer.trim_end().contains('\n'));
        serde_json::from_str(answer.trim()).unwrap()
    };
    let answer = ask(&format!("card:{CARD}"));
    assert_eq!(
        (
            answer["accepted"].clone(),
            answer["access_type"].clone(),
            answer["operator_id"].clone()
        ),
        (json!(true), json!("key-card"), Value::Null)
    );
    assert_eq!(ask(STATIC_PIN)["access_type"], "static-pin");
    assert_eq!(ask("card:")["reason"], "malformed");
    assert_eq!(ask("hello")["reason"], "malformed");
    assert_eq!(ask(&"1".repeat(400))["reason"], "malformed");
    for _ in 0..4 {
        assert_eq!(ask("00000000")["reason"], "wrong_pin");
    }
    let locked = ask(STATIC_PIN);
    assert_eq!(locked["reason"], "locked_out");
    let retry = locked["retry_after_s"].as_u64().unwrap();
    assert!((1..=30).contains(&retry), "{locked}");
    assert!(locked["message"].as_str().unwrap().contains("locked"));

    // Nobody listening: exit 4.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert_eq!(client(&closed_addr, "1234").0, Some(4));

    // Nothing the keypad was told shows in what the process printed.
    let (rest, stderr) = machine.stop();
    let printed = format!("{keypad_line}\n{}\n{stderr}", rest.join("\n"));
    for secret in [
        pin.as_str(),
        &pin[3..],
        STATIC_PIN,
        "00000000",
        &b64(PERSONAL_SEED),
    ] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    assert!(printed.contains("keypad refused reason=locked_out"), "{printed}");
}
