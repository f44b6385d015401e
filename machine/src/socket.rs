//! The local socket transport (PROTOCOL.md Part 2, "Local socket transport"): the same
//! fragments as BLE, over TCP on loopback, for tests, scripts and desktop demos with no
//! radio. Each frame is `u16 big-endian length ‖ fragment`; a TCP connection is a BLE
//! connection at a fixed ATT MTU (185 by default), subscribed from the start, so the
//! machine sends its Hello as soon as the connection is accepted.
//!
//! It also serves the simulated keypad and card reader ([`serve_keypad`]): a line protocol
//! where each request line is typed digits or `card:CARD_ID` and each answer is one JSON
//! line ([`crate::KeypadOutcome::to_json_line`]).
//!
//! Async: it drives a shared [`Machine`] (locked for the span of one synchronous call,
//! never across an `.await`) and calls `tick` on a timer. It never interprets a BLE
//! message, and never logs what was typed.

use crate::keypad::{CARD_PREFIX, KeypadOutcome, KeypadRefusal};
use crate::{Machine, MachineError, MachineEvent, Reply};
use opkey_protocol::Clock;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

/// The ATT MTU a socket connection stands for, unless configured otherwise.
pub const SOCKET_ATT_MTU: u16 = 185;
/// The largest fragment a frame may carry (the largest attribute value).
pub const MAX_FRAME_LEN: usize = 512;

/// A fragment as it goes on the stream.
pub fn encode_frame(fragment: &[u8]) -> Vec<u8> {
    assert!(
        fragment.len() <= MAX_FRAME_LEN,
        "fragments never exceed 512 bytes"
    );
    let mut frame = Vec::with_capacity(2 + fragment.len());
    frame.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    frame.extend_from_slice(fragment);
    frame
}

/// The next fragment on the stream; `None` when the peer closed it between frames. A
/// frame announcing more than 512 bytes is an `InvalidData` error.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {len}-byte frame exceeds the {MAX_FRAME_LEN}-byte maximum"),
        ));
    }
    let mut fragment = vec![0; len];
    reader.read_exact(&mut fragment).await?;
    Ok(Some(fragment))
}

/// Receives every event, in the order they happen, while the machine is locked.
pub type EventSink = Arc<dyn Fn(&MachineEvent) + Send + Sync>;

#[derive(Clone)]
pub struct ServeOptions {
    pub att_mtu: u16,
    /// How often the relay's timers are advanced.
    pub tick_every: Duration,
    /// The machine's RTC.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("att_mtu", &self.att_mtu)
            .field("tick_every", &self.tick_every)
            .field("clock", &self.clock)
            .finish()
    }
}

impl ServeOptions {
    /// MTU 185, a tick every 250 ms, on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            att_mtu: SOCKET_ATT_MTU,
            tick_every: Duration::from_millis(250),
            clock,
        }
    }
}

/// Serves connections on `listener` until accepting fails; ticks the machine meanwhile.
pub async fn serve(
    listener: TcpListener,
    machine: Arc<Mutex<Machine>>,
    options: ServeOptions,
    on_event: EventSink,
) -> io::Result<()> {
    let ticker = tokio::spawn(tick_forever(machine.clone(), options.clone(), on_event.clone()));
    let result = loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (machine, options, on_event) = (machine.clone(), options.clone(), on_event.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, &machine, &options, &on_event).await {
                        eprintln!("connection closed: {e}");
                    }
                });
            }
            Err(e) => break Err(e),
        }
    };
    ticker.abort();
    result
}

async fn tick_forever(machine: Arc<Mutex<Machine>>, options: ServeOptions, on_event: EventSink) {
    let mut interval = tokio::time::interval(options.tick_every);
    loop {
        interval.tick().await;
        let mut machine = lock(&machine);
        match machine.tick(options.clock.now()) {
            Ok(events) => events.iter().for_each(|e| on_event(e)),
            Err(e) => eprintln!("tick: {e}"),
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    machine: &Mutex<Machine>,
    options: &ServeOptions,
    on_event: &EventSink,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut rx, mut tx) = stream.into_split();
    let mut connection = lock(machine).connect();
    connection
        .set_att_mtu(options.att_mtu)
        .map_err(io::Error::other)?;
    let result = async {
        let now = options.clock.now();
        let reply = call(machine, on_event, |m| connection.on_subscribe(m, now))?;
        send(&mut tx, &reply.fragments).await?;
        while let Some(fragment) = read_frame(&mut rx).await? {
            let now = options.clock.now();
            let reply = call(machine, on_event, |m| connection.on_write(m, &fragment, now))?;
            send(&mut tx, &reply.fragments).await?;
        }
        Ok(())
    }
    .await;
    connection.on_disconnect(&mut lock(machine));
    result
}

/// One synchronous call on the machine; its events reach the sink before anything is sent.
fn call(
    machine: &Mutex<Machine>,
    on_event: &EventSink,
    f: impl FnOnce(&mut Machine) -> Result<Reply, MachineError>,
) -> io::Result<Reply> {
    let mut machine = lock(machine);
    let reply = f(&mut machine).map_err(io::Error::other)?;
    reply.events.iter().for_each(|e| on_event(e));
    Ok(reply)
}

async fn send<W: AsyncWrite + Unpin>(tx: &mut W, fragments: &[Vec<u8>]) -> io::Result<()> {
    let mut bytes = Vec::new();
    for fragment in fragments {
        bytes.extend_from_slice(&encode_frame(fragment));
    }
    tx.write_all(&bytes).await?;
    tx.flush().await
}

/// The longest request line the keypad socket reads (longer ones are answered `malformed`).
pub const MAX_KEYPAD_LINE: usize = 256;

/// Receives every keypad or card answer, after the machine's events.
pub type KeypadSink = Arc<dyn Fn(&KeypadOutcome) + Send + Sync>;

/// Serves the keypad line protocol on `listener` until accepting fails. Each connection
/// may send any number of lines; each non-empty line gets one JSON line back. Does not
/// tick the machine: run it beside [`serve`], which does.
pub async fn serve_keypad(
    listener: TcpListener,
    machine: Arc<Mutex<Machine>>,
    clock: Arc<dyn Clock>,
    on_event: EventSink,
    on_outcome: KeypadSink,
) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let (machine, clock, on_event, on_outcome) = (
            machine.clone(),
            clock.clone(),
            on_event.clone(),
            on_outcome.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = serve_keypad_connection(stream, &machine, &*clock, &on_event, &on_outcome).await {
                eprintln!("keypad connection closed: {e}");
            }
        });
    }
}

async fn serve_keypad_connection(
    stream: TcpStream,
    machine: &Mutex<Machine>,
    clock: &dyn Clock,
    on_event: &EventSink,
    on_outcome: &KeypadSink,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (rx, mut tx) = stream.into_split();
    let mut rx = BufReader::new(rx);
    loop {
        let mut line = Zeroizing::new(Vec::new());
        let read = (&mut rx)
            .take(MAX_KEYPAD_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > MAX_KEYPAD_LINE {
            // Skip the rest of the overlong line, then answer it once.
            let mut rest = Vec::new();
            rx.read_until(b'\n', &mut rest).await?;
            rest.iter_mut().for_each(|b| *b = 0);
        }
        let outcome = match std::str::from_utf8(&line) {
            Ok(text) if line.len() <= MAX_KEYPAD_LINE + 1 => {
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                keypad_call(machine, clock, on_event, text)?
            }
            _ => KeypadOutcome::Refused(KeypadRefusal::Malformed),
        };
        on_outcome(&outcome);
        let mut answer = outcome.to_json_line();
        answer.push('\n');
        tx.write_all(answer.as_bytes()).await?;
        tx.flush().await?;
    }
}

/// One keypad line on the machine: `card:ID` to the card reader, anything else to the keypad.
fn keypad_call(
    machine: &Mutex<Machine>,
    clock: &dyn Clock,
    on_event: &EventSink,
    line: &str,
) -> io::Result<KeypadOutcome> {
    let mut machine = lock(machine);
    let now = clock.now();
    let reply = match line.strip_prefix(CARD_PREFIX) {
        Some(card_id) => machine.present_card(card_id, now),
        None => machine.keypad_entry(line, now),
    }
    .map_err(io::Error::other)?;
    reply.events.iter().for_each(|e| on_event(e));
    Ok(reply.outcome)
}

fn lock(machine: &Mutex<Machine>) -> MutexGuard<'_, Machine> {
    machine.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut bytes: &[u8]) -> Vec<io::Result<Option<Vec<u8>>>> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut frames = Vec::new();
            loop {
                let frame = read_frame(&mut bytes).await;
                let done = !matches!(frame, Ok(Some(_)));
                frames.push(frame);
                if done {
                    return frames;
                }
            }
        })
    }

    #[test]
    fn frames_carry_fragments_whole_and_a_clean_close_ends_the_stream() {
        let mut stream = encode_frame(&[0xC0, 0, 1, 7]);
        stream.extend(encode_frame(&[]));
        let frames = read_all(&stream);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].as_ref().unwrap(), &Some(vec![0xC0, 0, 1, 7]));
        assert_eq!(frames[1].as_ref().unwrap(), &Some(vec![]));
        assert_eq!(frames[2].as_ref().unwrap(), &None);
    }

    #[test]
    fn an_oversize_or_cut_frame_is_an_error() {
        let frames = read_all(&[0x02, 0x01]);
        assert_eq!(frames[0].as_ref().unwrap_err().kind(), io::ErrorKind::InvalidData);
        let frames = read_all(&[0x00, 0x04, 1, 2]);
        assert_eq!(
            frames[0].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
