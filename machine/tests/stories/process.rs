//! `opkey-machine` as a process: keygen, then an unlock over the local socket transport,
//! observed through its status lines.

use opkey_protocol::api::MachineProvisioning;
use opkey_protocol::ble::test_support::{Issuer, PhoneKey, grant_body};
use opkey_protocol::ble::{
    Command, Credential, PhoneUnlock, PhoneUnlockParams, Reassembler, UnlockOutcome, fragment,
};
use opkey_protocol::encoding::{b64, unb64};
use ring::rand::SystemRandom;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;
use time::OffsetDateTime;

use crate::support::{keygen, run_command};
const MACHINE: &str = "mch_pppppppppppppppp";
const KEY: &str = "key_pppppppppppppppp";
const WAIT: Duration = Duration::from_secs(20);

/// Kills the machine when the test ends, however it ends.
struct Running {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a status line from opkey-machine")
    }

    fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

fn read_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut receiver = Reassembler::new();
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut fragment = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut fragment).unwrap();
        assert!(fragment.len() <= 182, "MTU 185 fragments");
        if let Some(message) = receiver.push(&fragment).unwrap() {
            return message;
        }
    }
}

fn write_message(stream: &mut TcpStream, message: &[u8]) {
    let mut bytes = Vec::new();
    for f in fragment(message, 185).unwrap() {
        bytes.extend_from_slice(&(f.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&f);
    }
    stream.write_all(&bytes).unwrap();
}

#[test]
fn the_process_unlocks_over_its_local_socket_and_relocks_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("machine.key");
    let keygen_out = keygen(&key_file);
    assert!(keygen_out.status.success(), "{keygen_out:?}");
    let public_key = String::from_utf8(keygen_out.stdout).unwrap().trim().to_owned();
    let machine_public_key = unb64(&public_key).expect("keygen prints the base64url public key");
    assert!(
        !keygen(&key_file).status.success(),
        "keygen never overwrites a key"
    );

    let issuer = Issuer::new();
    let provisioning = MachineProvisioning {
        machine_id: MACHINE.into(),
        name: "Telehandler 2".into(),
        issuer_public_key: b64(issuer.public_key()),
        machine_public_key: public_key,
        challenge_lifetime_s: 10,
        relock_after_s: 1,
        revocations: None,
        server_url: None,
        keypad: None,
    };
    let provision_file = dir.path().join("provisioning.json");
    std::fs::write(&provision_file, serde_json::to_vec(&provisioning).unwrap()).unwrap();

    let mut child = run_command(
        &provision_file,
        &key_file,
        &dir.path().join("state.json"),
        &["--listen", "127.0.0.1:0"],
    )
    .spawn()
    .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut machine = Running { child, stdin, lines };

    let first = machine.next_line();
    let addr = first
        .strip_prefix("listening on ")
        .expect("the first line names the address");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();

    // The Hello arrives unasked: a TCP connection is a subscribed BLE connection.
    let hello = read_message(&mut stream);
    let now = OffsetDateTime::now_utc();
    let unix = now.unix_timestamp() as u64;
    let phone_key = PhoneKey::new();
    let grant = issuer.grant(grant_body(
        KEY,
        &phone_key,
        &[MACHINE],
        unix - 3600,
        unix + 86_400,
    ));
    let params = PhoneUnlockParams {
        machine_id: MACHINE.into(),
        machine_public_key,
        command: Command::Unlock,
        credential: Credential::Full {
            grant_bytes: grant.into_bytes(),
        },
        revocations: None,
    };
    let mut phone = PhoneUnlock::new(params, now).unwrap();
    let needed = phone.on_hello(&hello, &SystemRandom::new()).unwrap();
    let request = phone.on_signature(phone_key.sign(&needed.transcript)).unwrap();
    write_message(&mut stream, &request);
    let outcome = phone.on_result(&read_message(&mut stream)).unwrap();
    assert_eq!(
        outcome,
        UnlockOutcome::Unlocked {
            relock_after_s: 1,
            usage_session: 1
        }
    );

    let unlocked = machine.next_line();
    assert!(
        unlocked.starts_with(&format!("unlocked key={KEY} session=1")),
        "{unlocked}"
    );
    // The relay relocks by itself a second later; `status` answers meanwhile.
    machine.command("status");
    let (status, relocked): (Vec<String>, Vec<String>) = [machine.next_line(), machine.next_line()]
        .into_iter()
        .partition(|l| l.starts_with("status "));
    assert!(status[0].starts_with("status relay="), "{status:?}");
    assert_eq!(relocked, ["relocked reason=timeout session=1"]);
}
