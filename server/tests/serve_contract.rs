//! `opkey-server serve` prints `listening on http://HOST:PORT` as its first line, so
//! scripts can start it on port 0 and learn the port.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_on_port_0_prints_the_real_address_first_and_answers_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("backend.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_opkey-server"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "t0ken",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let first = first.trim_end().to_owned();
    let address = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first:?}"));
    let (host, port) = address.rsplit_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    assert_ne!(port.parse::<u16>().unwrap(), 0);

    let mut stream = std::net::TcpStream::connect(address).expect("the printed address answers");
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().unwrap();
    child.wait().unwrap();
}
