//! [`SocketTransport`]: the unlock over TCP to `opkey-machine run --listen ADDR`, for the
//! desktop and scripts with no radio (PROTOCOL.md 2.10). One TCP connection stands for
//! one BLE connection already subscribed to `TX`; every fragment travels as
//! `u16 big-endian length ‖ fragment` (at most 512 bytes); the ATT MTU is fixed per
//! listener (185 unless configured).
//!
//! "Scanning" probes a configured list of addresses: each one's Hello names its machine,
//! whose tag is then compared with the tags asked for. Each connection reads its frames
//! in a task of its own, so a timeout never leaves half a frame behind.

use super::transport::{
    Advertisement, BleConnection, BleTransport, MachineTag, TransportError, TransportFuture,
};
use opkey_protocol::ble::messages::Hello;
use opkey_protocol::ble::{Reassembler, machine_tag};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The ATT MTU of a socket link unless configured otherwise (as `opkey-machine run`).
pub const SOCKET_ATT_MTU: u16 = 185;
/// The longest fragment a frame may carry.
const MAX_FRAME_LEN: usize = 512;

struct SocketLink {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    frames: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    reader: JoinHandle<()>,
}

/// Machines reached over loopback TCP instead of Bluetooth.
pub struct SocketTransport {
    addresses: Vec<String>,
    att_mtu: u16,
    links: Mutex<HashMap<u64, Arc<SocketLink>>>,
    next_handle: AtomicU64,
}

impl fmt::Debug for SocketTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTransport")
            .field("addresses", &self.addresses)
            .field("att_mtu", &self.att_mtu)
            .finish_non_exhaustive()
    }
}

impl SocketTransport {
    /// Machines listening at `addresses` (`host:port`), at MTU 185.
    pub fn new(addresses: Vec<String>) -> Self {
        Self {
            addresses,
            att_mtu: SOCKET_ATT_MTU,
            links: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    /// The MTU the listeners were started with (`opkey-machine run --mtu`).
    pub fn with_att_mtu(mut self, att_mtu: u16) -> Self {
        self.att_mtu = att_mtu;
        self
    }

    fn links(&self) -> MutexGuard<'_, HashMap<u64, Arc<SocketLink>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn link(&self, handle: u64) -> Result<Arc<SocketLink>, TransportError> {
        self.links()
            .get(&handle)
            .cloned()
            .ok_or(TransportError::Disconnected)
    }

    async fn scan_now(
        &self,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> Result<Vec<Advertisement>, TransportError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        for address in &self.addresses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(Ok(tag)) = tokio::time::timeout(left, probe(address)).await else {
                continue;
            };
            if tags.is_empty() || tags.contains(&tag) {
                seen.push(Advertisement {
                    peripheral_id: address.clone(),
                    tag,
                    rssi: None,
                });
            }
        }
        Ok(seen)
    }

    async fn connect_now(&self, address: String, timeout: Duration) -> Result<BleConnection, TransportError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(&address)).await {
            Err(_) => return Err(TransportError::Timeout),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(TransportError::NotFound);
            }
            Ok(Err(e)) => {
                return Err(TransportError::Other {
                    reason: e.to_string(),
                });
            }
            Ok(Ok(stream)) => stream,
        };
        stream.set_nodelay(true).map_err(other)?;
        let (mut rx, tx) = stream.into_split();
        let (frames_tx, frames_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Ok(Some(frame)) = read_frame(&mut rx).await {
                if frames_tx.send(frame).is_err() {
                    return;
                }
            }
        });
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.links().insert(
            handle,
            Arc::new(SocketLink {
                writer: tokio::sync::Mutex::new(tx),
                frames: tokio::sync::Mutex::new(frames_rx),
                reader,
            }),
        );
        Ok(BleConnection {
            handle,
            att_mtu: self.att_mtu,
        })
    }

    async fn write_now(&self, handle: u64, fragment: Vec<u8>) -> Result<(), TransportError> {
        if fragment.len() > MAX_FRAME_LEN {
            return Err(TransportError::Other {
                reason: format!("a {}-byte fragment does not fit a frame", fragment.len()),
            });
        }
        let link = self.link(handle)?;
        let mut frame = Vec::with_capacity(2 + fragment.len());
        frame.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        frame.extend_from_slice(&fragment);
        let mut writer = link.writer.lock().await;
        writer
            .write_all(&frame)
            .await
            .map_err(|_| TransportError::Disconnected)
    }

    async fn next_notification_now(&self, handle: u64, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let link = self.link(handle)?;
        let mut frames = link.frames.lock().await;
        match tokio::time::timeout(timeout, frames.recv()).await {
            Err(_) => Err(TransportError::Timeout),
            Ok(None) => Err(TransportError::Disconnected),
            Ok(Some(frame)) => Ok(frame),
        }
    }

    async fn disconnect_now(&self, handle: u64) {
        let Some(link) = self.links().remove(&handle) else {
            return;
        };
        link.reader.abort();
        let _ = link.writer.lock().await.shutdown().await;
    }
}

impl Drop for SocketTransport {
    fn drop(&mut self) {
        for link in self.links().values() {
            link.reader.abort();
        }
    }
}

/// Reads the Hello a listener sends on accepting, and hangs up: the machine's tag.
async fn probe(address: &str) -> io::Result<MachineTag> {
    let mut stream = TcpStream::connect(address).await?;
    let mut reassembler = Reassembler::new();
    loop {
        let Some(frame) = read_frame(&mut stream).await? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        match reassembler.push(&frame) {
            Ok(None) => {}
            Ok(Some(message)) => {
                let hello =
                    Hello::decode(&message).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let _ = stream.shutdown().await;
                return Ok(machine_tag(&hello.machine_id));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// The next frame's fragment; `None` when the peer closed between frames.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
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
            format!("a {len}-byte frame exceeds {MAX_FRAME_LEN} bytes"),
        ));
    }
    let mut fragment = vec![0; len];
    reader.read_exact(&mut fragment).await?;
    Ok(Some(fragment))
}

fn other(e: io::Error) -> TransportError {
    TransportError::Other {
        reason: e.to_string(),
    }
}

impl BleTransport for SocketTransport {
    fn scan(
        &self,
        _service_uuid: String,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> TransportFuture<'_, Vec<Advertisement>> {
        Box::pin(self.scan_now(tags, timeout))
    }

    fn connect(&self, peripheral_id: String, timeout: Duration) -> TransportFuture<'_, BleConnection> {
        Box::pin(self.connect_now(peripheral_id, timeout))
    }

    /// A socket link is subscribed from the start: the Hello is already on its way.
    fn subscribe(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move { self.link(connection).map(|_| ()) })
    }

    fn write(&self, connection: u64, fragment: Vec<u8>) -> TransportFuture<'_, ()> {
        Box::pin(self.write_now(connection, fragment))
    }

    fn next_notification(&self, connection: u64, timeout: Duration) -> TransportFuture<'_, Vec<u8>> {
        Box::pin(self.next_notification_now(connection, timeout))
    }

    fn disconnect(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move {
            self.disconnect_now(connection).await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_an_oversize_frame_is_refused() {
        let mut bytes: &[u8] = &[0, 3, 1, 2, 3, 0, 0];
        assert_eq!(read_frame(&mut bytes).await.unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(read_frame(&mut bytes).await.unwrap(), Some(vec![]));
        assert_eq!(read_frame(&mut bytes).await.unwrap(), None);
        let mut oversize: &[u8] = &[0x02, 0x01];
        assert_eq!(
            read_frame(&mut oversize).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn an_address_with_no_listener_is_simply_not_seen() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = SocketTransport::new(vec![format!("127.0.0.1:{port}")]);
        let seen = t.scan_now(vec![], Duration::from_millis(500)).await.unwrap();
        assert!(seen.is_empty());
        assert_eq!(
            t.connect_now(format!("127.0.0.1:{port}"), Duration::from_secs(1))
                .await
                .unwrap_err(),
            TransportError::NotFound
        );
    }
}
