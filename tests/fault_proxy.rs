//! A seeded, fault-injecting HTTP/1.1 proxy on raw TCP, between a phone (the real core)
//! and the real backend on loopback; the end-to-end tests use it for every bad network and
//! every failing backend. It works on the bytes of each connection, so it can do what a
//! bad mobile network or a failing backend does: add latency, take a request and never
//! answer it, reset the connection before or after the request reached the backend (or
//! part-way through the answer), cut an answer's body short behind headers that promise
//! all of it, replace an answer's body with bytes that are not JSON, answer 500/502/503
//! itself, or drip the answer a few bytes at a time.
//!
//! Which exchange gets which fault is decided by a [`Rule`]: a path prefix (and
//! optionally a method) selects the exchanges, and a [`Schedule`] says what happens to
//! the n-th selected exchange: always the same fault, a fixed script, or a seeded random
//! draw that depends only on the seed and n, so a run is reproduced from its seed. Every
//! exchange is written to a [`Journal`] (what was done, whether the request reached the
//! backend and what it answered) for the tests to check against; [`NetFaultProxy::spoiled`]
//! counts the exchanges that got a fault.
//!
//! Every request goes upstream on a fresh connection with `Connection: close`; the
//! client's connection is kept alive until a fault ends it, as a real proxy would.

use crate::fakes::AbortOnDrop;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use url::Url;

/// The largest request or answer head (bytes) the proxy reads.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request or answer body (bytes) the proxy buffers.
const MAX_BODY: usize = 32 << 20;
/// How long the proxy waits for the backend's whole answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(20);

/// What the proxy does to one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFault {
    /// Forward untouched.
    Pass,
    /// Wait this long, then forward.
    Latency(Duration),
    /// Read the request and never answer it, holding the connection open until the client
    /// gives up: the client's timeout fires. The backend never sees the request.
    NoAnswer,
    /// Read the request, then reset the client's connection: the backend never sees it.
    ResetBeforeForward,
    /// Forward the request and read the backend's whole answer, relay its first `bytes`
    /// bytes (0: none), then reset the client's connection: the request did reach the
    /// backend, the answer is lost.
    ResetAfter { bytes: usize },
    /// Forward, then send the answer's headers with its true `Content-Length` but only
    /// half of its body, and close the connection.
    Truncate,
    /// Forward, then send the backend's status and headers with a body of bytes that are
    /// not JSON in place of its own (its `Content-Length` matches what is sent, so the
    /// client reads a whole answer it cannot parse).
    GarbageBody,
    /// Answer with this status without forwarding (500 with the backend's JSON error
    /// shape; any other status with an HTML page, as a load balancer would).
    Status(u16),
    /// Forward, then send the answer `chunk` bytes at a time with `every` between chunks.
    Drip { chunk: usize, every: Duration },
}

impl NetFault {
    /// Whether the connection survives this fault (the client may send more requests).
    fn keeps_connection(self) -> bool {
        matches!(
            self,
            NetFault::Pass
                | NetFault::Latency(_)
                | NetFault::GarbageBody
                | NetFault::Status(_)
                | NetFault::Drip { .. }
        )
    }
}

/// What the n-th exchange selected by a [`Rule`] gets (n counts from 0).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every selected exchange gets this fault.
    Always(NetFault),
    /// Exchange n gets `script[n]`; those after the script pass.
    Script(Vec<NetFault>),
    /// Exchange n gets a fault with probability `per_mille`/1000, drawn uniformly from
    /// `kinds`, from a generator seeded with (`seed`, n) only.
    Random {
        seed: u64,
        per_mille: u32,
        kinds: Vec<NetFault>,
    },
}

/// Which exchanges a [`Schedule`] applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Only requests whose path (with query) starts with this; "" for all.
    pub path_prefix: String,
    /// Only requests with this method (e.g. "POST"); `None` for all.
    pub method: Option<String>,
    pub schedule: Schedule,
}

impl Rule {
    pub fn new(path_prefix: &str, schedule: Schedule) -> Self {
        Self {
            path_prefix: path_prefix.to_owned(),
            method: None,
            schedule,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    fn selects(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path_prefix) && self.method.as_deref().is_none_or(|m| m == method)
    }

    fn fault_for(&self, n: u64) -> NetFault {
        match &self.schedule {
            Schedule::Always(f) => *f,
            Schedule::Script(script) => usize::try_from(n)
                .ok()
                .and_then(|i| script.get(i))
                .copied()
                .unwrap_or(NetFault::Pass),
            Schedule::Random {
                seed,
                per_mille,
                kinds,
            } => {
                let mut rng = SplitMix64::new(seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
                if kinds.is_empty() || rng.below(1000) >= u64::from(*per_mille) {
                    NetFault::Pass
                } else {
                    kinds[rng.below(kinds.len() as u64) as usize]
                }
            }
        }
    }
}

/// SplitMix64: a tiny deterministic generator, enough to pick faults and delays.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        // Multiply-shift: no modulo bias worth speaking of for test-sized bounds.
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

/// One exchange as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Order of arrival of the request at the proxy, from 0.
    pub seq: u64,
    /// The client connection it came on, from 0.
    pub connection: u64,
    pub method: String,
    pub path: String,
    pub fault: NetFault,
    /// The backend received the request.
    pub forwarded: bool,
    /// The backend's status, when it answered.
    pub upstream_status: Option<u16>,
}

impl Exchange {
    /// Whether the proxy did anything to this exchange but pass it on.
    pub fn spoiled(&self) -> bool {
        self.fault != NetFault::Pass
    }
}

/// Every exchange so far, in order.
pub type Journal = Vec<Exchange>;

#[derive(Debug, Default)]
struct State {
    rule: Option<Rule>,
    /// Exchanges the current rule selected so far.
    selected: u64,
    next_seq: u64,
    journal: Journal,
}

/// A running proxy. Stops (and drops every connection) when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct NetFaultProxy {
    pub url: Url,
    state: Arc<Mutex<State>>,
    _task: Arc<AbortOnDrop>,
}

impl NetFaultProxy {
    /// Listens on a loopback port and forwards to `upstream` (`http://host:port/`).
    pub async fn start(upstream: &Url) -> Self {
        let host = upstream.host_str().expect("upstream has a host").to_owned();
        let port = upstream.port_or_known_default().expect("upstream has a port");
        let upstream_addr = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let state: Arc<Mutex<State>> = Arc::default();
        let task = tokio::spawn(accept_loop(listener, upstream_addr, state.clone()));
        Self {
            url: Url::parse(&format!("http://{addr}/")).expect("proxy URL"),
            state,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Applies `rule` from now on (its count of selected exchanges starts at 0).
    pub fn set(&self, rule: Rule) {
        let mut state = self.lock();
        state.rule = Some(rule);
        state.selected = 0;
    }

    /// Everything passes from now on.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.rule = None;
        state.selected = 0;
    }

    pub fn journal(&self) -> Journal {
        self.lock().journal.clone()
    }

    /// How many exchanges so far got a fault (any but [`NetFault::Pass`]).
    pub fn spoiled(&self) -> usize {
        self.lock().journal.iter().filter(|e| e.spoiled()).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, state: Arc<Mutex<State>>) {
    // Owned here: aborting this task drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    let mut next_connection = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let connection = next_connection;
                next_connection += 1;
                connections.spawn(serve_connection(client, connection, upstream.clone(), state.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A request or an answer, parsed enough to forward it.
#[derive(Debug)]
struct Message {
    /// Request line or status line.
    start: String,
    /// Headers other than those about framing and the connection.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    /// The bytes to send on: framing by `Content-Length`, plus `extra` headers.
    fn encode(&self, extra: &[(&str, &str)]) -> (Vec<u8>, usize) {
        let mut head = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let head_len = head.len();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        (bytes, head_len)
    }
}

/// Why the proxy stopped reading a message.
#[derive(Debug)]
enum ReadEnd {
    /// The peer closed the connection before a new message started.
    Closed,
    /// Anything else (malformed, too large, cut off, I/O error).
    Broken,
}

async fn serve_connection(
    mut client: TcpStream,
    connection: u64,
    upstream: String,
    state: Arc<Mutex<State>>,
) {
    let mut buffered = Vec::new();
    loop {
        let request = match read_message(&mut client, &mut buffered, true).await {
            Ok(request) => request,
            Err(ReadEnd::Closed | ReadEnd::Broken) => return,
        };
        let mut words = request.start.split_whitespace();
        let method = words.next().unwrap_or_default().to_owned();
        let path = words.next().unwrap_or_default().to_owned();
        let (seq, fault) = {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            let fault = match &s.rule {
                Some(rule) if rule.selects(&method, &path) => {
                    let fault = rule.fault_for(s.selected);
                    s.selected += 1;
                    fault
                }
                _ => NetFault::Pass,
            };
            let seq = s.next_seq;
            s.next_seq += 1;
            s.journal.push(Exchange {
                seq,
                connection,
                method: method.clone(),
                path: path.clone(),
                fault,
                forwarded: false,
                upstream_status: None,
            });
            (seq, fault)
        };
        let record = |forwarded: bool, status: Option<u16>| {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = s.journal.iter_mut().find(|e| e.seq == seq) {
                e.forwarded = forwarded;
                e.upstream_status = status;
            }
        };

        match fault {
            NetFault::ResetBeforeForward => return reset(client),
            NetFault::NoAnswer => return wait_for_close(client).await,
            NetFault::Status(status) => {
                let answer = own_answer(status);
                if client.write_all(&answer.encode(&[]).0).await.is_err() {
                    return;
                }
                continue;
            }
            NetFault::Latency(wait) => tokio::time::sleep(wait).await,
            _ => {}
        }

        let answer = match forward(&upstream, &request).await {
            Some(answer) => answer,
            None => {
                // The backend itself failed: say so as a gateway would.
                record(false, None);
                let _ = client.write_all(&own_answer(502).encode(&[]).0).await;
                return;
            }
        };
        record(true, status_of(&answer.start));
        let answer = if fault == NetFault::GarbageBody {
            garbled(answer)
        } else {
            answer
        };
        let (bytes, head_len) = answer.encode(&[]);
        let written = match fault {
            NetFault::ResetAfter { bytes: n } => {
                let n = n.min(bytes.len());
                let _ = client.write_all(&bytes[..n]).await;
                let _ = client.flush().await;
                return reset(client);
            }
            NetFault::Truncate => {
                let body = bytes.len() - head_len;
                let _ = client.write_all(&bytes[..head_len + body / 2]).await;
                let _ = client.flush().await;
                let _ = client.shutdown().await;
                return;
            }
            NetFault::Drip { chunk, every } => drip(&mut client, &bytes, chunk.max(1), every).await,
            _ => client.write_all(&bytes).await.is_ok(),
        };
        if !written || !fault.keeps_connection() {
            return;
        }
    }
}

/// Reads and drops whatever the client sends until it closes the connection (or it
/// fails): a server that took the request and went quiet.
async fn wait_for_close(mut client: TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// `answer` with its body replaced by the start of a JSON document that stops mid-way,
/// so the bytes are not JSON; `Content-Length` is set from the new body on encoding.
fn garbled(answer: Message) -> Message {
    Message {
        start: answer.start,
        headers: answer
            .headers
            .into_iter()
            .filter(|(name, _)| name != "content-encoding")
            .collect(),
        body: br#"{"cursor": 7, "keys": [{"id": "#.to_vec(),
    }
}

/// Closes with RST instead of FIN: the peer sees "connection reset".
fn reset(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

async fn drip(client: &mut TcpStream, bytes: &[u8], chunk: usize, every: Duration) -> bool {
    for piece in bytes.chunks(chunk) {
        if client.write_all(piece).await.is_err() || client.flush().await.is_err() {
            return false;
        }
        tokio::time::sleep(every).await;
    }
    true
}

/// Sends `request` to the backend on a new connection and reads its whole answer.
async fn forward(upstream: &str, request: &Message) -> Option<Message> {
    let exchange = async {
        let mut server = TcpStream::connect(upstream).await.ok()?;
        let (bytes, _) = request.encode(&[("connection", "close")]);
        server.write_all(&bytes).await.ok()?;
        let mut buffered = Vec::new();
        read_message(&mut server, &mut buffered, false).await.ok()
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// The proxy's own answer with `status`.
fn own_answer(status: u16) -> Message {
    let reason = match status {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let (content_type, body) = if status == 500 {
        (
            "application/json",
            r#"{"error":{"code":"internal","message":"injected by the fault proxy"}}"#.to_owned(),
        )
    } else {
        (
            "text/html",
            format!("<html><body><h1>{status} {reason}</h1></body></html>"),
        )
    };
    Message {
        start: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body: body.into_bytes(),
    }
}

fn status_of(status_line: &str) -> Option<u16> {
    status_line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads one HTTP/1.1 message from `stream` (`buffered` holds bytes read past the
/// previous one). A request without a length has no body; an answer without one runs to
/// the end of the stream.
async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffered: &mut Vec<u8>,
    is_request: bool,
) -> Result<Message, ReadEnd> {
    let head_end = loop {
        if let Some(i) = find(buffered, b"\r\n\r\n") {
            break i;
        }
        if buffered.len() > MAX_HEAD {
            return Err(ReadEnd::Broken);
        }
        if read_more(stream, buffered).await? == 0 {
            return Err(if buffered.is_empty() {
                ReadEnd::Closed
            } else {
                ReadEnd::Broken
            });
        }
    };
    let head = String::from_utf8(buffered[..head_end].to_vec()).map_err(|_| ReadEnd::Broken)?;
    buffered.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ReadEnd::Broken)?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        match name.as_str() {
            "content-length" => length = Some(value.parse().map_err(|_| ReadEnd::Broken)?),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" | "keep-alive" => {}
            _ => headers.push((name, value)),
        }
    }
    let body = if chunked {
        read_chunked(stream, buffered).await?
    } else if let Some(length) = length {
        if length > MAX_BODY {
            return Err(ReadEnd::Broken);
        }
        while buffered.len() < length {
            if read_more(stream, buffered).await? == 0 {
                return Err(ReadEnd::Broken);
            }
        }
        buffered.drain(..length).collect()
    } else if is_request {
        Vec::new()
    } else {
        while read_more(stream, buffered).await? > 0 {
            if buffered.len() > MAX_BODY {
                return Err(ReadEnd::Broken);
            }
        }
        std::mem::take(buffered)
    };
    Ok(Message { start, headers, body })
}

async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffered: &mut Vec<u8>,
) -> Result<Vec<u8>, ReadEnd> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buffered, b"\r\n") {
                break i;
            }
            if read_more(stream, buffered).await? == 0 {
                return Err(ReadEnd::Broken);
            }
        };
        let line = std::str::from_utf8(&buffered[..line_end]).map_err(|_| ReadEnd::Broken)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ReadEnd::Broken)?;
        buffered.drain(..line_end + 2);
        if size == 0 {
            // Trailers (none expected) up to the empty line.
            loop {
                if let Some(i) = find(buffered, b"\r\n") {
                    buffered.drain(..i + 2);
                    if i == 0 {
                        return Ok(body);
                    }
                    continue;
                }
                if read_more(stream, buffered).await? == 0 {
                    return Err(ReadEnd::Broken);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadEnd::Broken);
        }
        while buffered.len() < size + 2 {
            if read_more(stream, buffered).await? == 0 {
                return Err(ReadEnd::Broken);
            }
        }
        body.extend_from_slice(&buffered[..size]);
        buffered.drain(..size + 2);
    }
}

async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buffered: &mut Vec<u8>) -> Result<usize, ReadEnd> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.map_err(|_| ReadEnd::Broken)?;
    buffered.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_schedule_depends_only_on_its_seed_and_the_exchange_number() {
        let kinds = vec![
            NetFault::Truncate,
            NetFault::Status(503),
            NetFault::ResetBeforeForward,
        ];
        let rule = |seed| {
            Rule::new(
                "",
                Schedule::Random {
                    seed,
                    per_mille: 400,
                    kinds: kinds.clone(),
                },
            )
        };
        let a: Vec<NetFault> = (0..200).map(|n| rule(7).fault_for(n)).collect();
        let b: Vec<NetFault> = (0..200).map(|n| rule(7).fault_for(n)).collect();
        let c: Vec<NetFault> = (0..200).map(|n| rule(8).fault_for(n)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let spoiled = a.iter().filter(|f| **f != NetFault::Pass).count();
        assert!((40..=120).contains(&spoiled), "{spoiled} of 200 at 40 %");
        for kind in &kinds {
            assert!(a.contains(kind), "{kind:?} never drawn");
        }
    }

    #[test]
    fn a_script_runs_once_then_everything_passes() {
        let rule = Rule::new("/v1/events", Schedule::Script(vec![NetFault::Truncate])).method("POST");
        assert!(rule.selects("POST", "/v1/events"));
        assert!(!rule.selects("GET", "/v1/events"));
        assert!(!rule.selects("POST", "/v1/sync"));
        assert_eq!(rule.fault_for(0), NetFault::Truncate);
        assert_eq!(rule.fault_for(1), NetFault::Pass);
    }

    #[tokio::test]
    async fn a_garbled_answer_keeps_status_and_headers_and_frames_its_non_json_body() {
        let wire: &[u8] =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"cursor\": 9}";
        let answer = read_message(&mut &wire[..], &mut Vec::new(), false)
            .await
            .unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&answer.body).is_ok());
        let (bytes, _) = garbled(answer).encode(&[]);
        let reread = read_message(&mut &bytes[..], &mut Vec::new(), false)
            .await
            .unwrap();
        assert_eq!(reread.start, "HTTP/1.1 200 OK");
        assert_eq!(
            reread.headers,
            vec![("content-type".to_owned(), "application/json".to_owned())]
        );
        assert!(!reread.body.is_empty());
        assert!(serde_json::from_slice::<serde_json::Value>(&reread.body).is_err());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(&format!("content-length: {}\r\n", reread.body.len())));
    }

    #[tokio::test]
    async fn chunked_and_sized_messages_are_read_whole_and_reencoded_with_a_length() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nGET /next HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi";
        let mut stream = wire;
        let mut buffered = Vec::new();
        let first = read_message(&mut stream, &mut buffered, false).await.unwrap();
        assert_eq!(first.body, b"Wikipedia");
        assert_eq!(first.headers, vec![("x-a".to_owned(), "b".to_owned())]);
        let (bytes, head_len) = first.encode(&[]);
        assert!(String::from_utf8_lossy(&bytes[..head_len]).contains("content-length: 9\r\n"));
        let second = read_message(&mut stream, &mut buffered, true).await.unwrap();
        assert_eq!(second.start, "GET /next HTTP/1.1");
        assert_eq!(second.body, b"hi");
        assert!(matches!(
            read_message(&mut stream, &mut buffered, true).await,
            Err(ReadEnd::Closed)
        ));
        let mut cut: &[u8] = b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc";
        assert!(matches!(
            read_message(&mut cut, &mut Vec::new(), true).await,
            Err(ReadEnd::Broken)
        ));
    }
}
