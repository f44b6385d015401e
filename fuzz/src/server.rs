//! An `opkey-server` running inside the fuzz process on 127.0.0.1 (its own tokio runtime
//! on a background thread, its database in a scratch directory), and a minimal blocking
//! HTTP/1.1 client with keep-alive to post files to it. The import's CSV and XLSX readers
//! are private to the server; this is how the fuzzer reaches them, through the same path
//! an admin's upload takes.
//!
//! A panic anywhere in the server aborts the process (libfuzzer-sys's panic hook), so the
//! fuzzer sees it as a crash; a `500` answer is turned into a panic by the targets.

use opkey_protocol::api::{ErrorBody, ErrorCode, ImportPreview};
use opkey_protocol::encoding::hex;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The running server and one open connection to it.
pub struct Server {
    addr: SocketAddr,
    token: String,
    connection: Mutex<Option<BufReader<TcpStream>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({})", self.addr)
    }
}

/// The process's server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    let mut secret = [0u8; 16];
    SystemRandom::new().fill(&mut secret).expect("random admin token");
    let token = hex(&secret);
    let dir = crate::scratch_dir("server");
    let config = opkey_server::ServerConfig::new(dir.join("opkey.db"), token.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
            let running = opkey_server::start(config, listen)
                .await
                .expect("the fuzz server starts");
            let url = running.url().clone();
            let addr = SocketAddr::new(
                url.host_str()
                    .and_then(|h| h.parse().ok())
                    .expect("the server listens on an IP address"),
                url.port().expect("the server URL has a port"),
            );
            tx.send(addr).expect("the fuzz target waits for the server");
            // Serve until the process exits.
            std::future::pending::<()>().await;
            drop(running);
        });
    });
    let addr = rx.recv().expect("the server thread reports its address");
    Server {
        addr,
        token,
        connection: Mutex::new(None),
    }
}

impl Server {
    /// POSTs `body` to `path` as the bootstrap admin. Reconnects once when the kept-alive
    /// connection turns out to be closed before any answer.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            let reader = match connection.as_mut() {
                Some(reader) => reader,
                None => {
                    let stream = TcpStream::connect(self.addr).expect("connect to the fuzz server");
                    // One request in one segment, answered at once: no Nagle delay.
                    stream.set_nodelay(true).expect("TCP_NODELAY on loopback");
                    connection.insert(BufReader::new(stream))
                }
            };
            match exchange(reader, &self.token, path, content_type, body) {
                Ok((answer, keep_alive)) => {
                    if !keep_alive {
                        *connection = None;
                    }
                    return answer;
                }
                // A stale keep-alive connection: one fresh try.
                Err(_) if attempt == 0 => *connection = None,
                Err(e) => panic!("the server dropped the connection without an answer: {e}"),
            }
        }
        unreachable!("the loop returns or panics on its second attempt")
    }
}

fn exchange(
    reader: &mut BufReader<TcpStream>,
    token: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(Answer, bool)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let stream = reader.get_mut();
    stream.write_all(&request)?;
    stream.flush()?;

    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no status line",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("a malformed HTTP status line: {line:?}"));
    let mut content_length = None;
    let mut close = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "headers cut short",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                close = true;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                panic!("the server answered {status} with a transfer encoding this client does not read");
            }
        }
    }
    let mut body = vec![0u8; content_length.unwrap_or(0)];
    reader.read_exact(&mut body)?;
    Ok((Answer { status, body }, !close))
}

/// The preview endpoint of the operator import.
pub const PREVIEW_PATH: &str = "/admin/v1/operators/import/preview";

/// Most operator rows one import file may hold (the server's `MAX_ROWS`).
pub const MAX_ROWS: usize = 10_000;

/// Posts `file` to the import preview and checks the answer: a `200` preview whose rows
/// are numbered as a spreadsheet shows them (strictly rising, after the header row), at
/// most [`MAX_ROWS`], valid exactly when no problem names them, a valid row's phone in
/// E.164 and on no other valid row; or a `400` `unreadable_file` / `invalid_request`, or a
/// `413`. Anything else (a `500`, a dropped connection) panics: the fuzzer's crash.
pub fn check_preview(content_type: &str, file: &[u8]) -> Option<ImportPreview> {
    let answer = server().post(PREVIEW_PATH, content_type, file);
    match answer.status {
        200 => {}
        400 => {
            let body: ErrorBody = serde_json::from_slice(&answer.body).expect("a 400 has an error body");
            assert!(
                matches!(
                    body.error.code,
                    ErrorCode::UnreadableFile | ErrorCode::InvalidRequest
                ),
                "unexpected error code {:?}",
                body.error.code
            );
            return None;
        }
        413 => return None,
        status => panic!(
            "the import preview answered {status}: {}",
            String::from_utf8_lossy(&answer.body)
        ),
    }
    let preview: ImportPreview = serde_json::from_slice(&answer.body).expect("a 200 has a preview");
    assert!(preview.rows.len() <= MAX_ROWS);
    let mut last_row = 1;
    let mut valid_phones = HashSet::new();
    for row in &preview.rows {
        assert!(
            row.row > last_row,
            "row numbers rise after the header: {} after {last_row}",
            row.row
        );
        last_row = row.row;
        let has_problem = preview.problems.iter().any(|p| p.row == row.row);
        assert_eq!(
            row.valid, !has_problem,
            "row {} valid iff it has no problem",
            row.row
        );
        if row.valid {
            assert!(!row.name.trim().is_empty());
            let digits = row.phone.strip_prefix('+').expect("a valid phone is E.164");
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            assert!(
                valid_phones.insert(row.phone.clone()),
                "phone {} on two valid rows",
                row.phone
            );
        }
    }
    if !preview.rows.is_empty() {
        for problem in &preview.problems {
            assert!(
                preview.rows.iter().any(|r| r.row == problem.row),
                "a problem on no row"
            );
        }
    }
    Some(preview)
}
