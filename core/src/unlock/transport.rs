//! The radio, as the unlock driver sees it: [`BleTransport`]. The phone shells implement
//! it over Android's and iOS's Bluetooth APIs (through the FFI facade), the desktop over
//! a local socket ([`super::SocketTransport`]), tests in memory
//! ([`super::InMemoryTransport`]).
//!
//! A transport moves fragments (PROTOCOL.md 2.5) and never knows what they mean: it
//! scans for the OpKey service, connects, subscribes to `TX`, writes `RX`, hands out `TX`
//! notifications one by one and disconnects. It is object-safe: every method returns a
//! boxed future and takes owned arguments, so a foreign implementation needs no Rust
//! lifetimes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The 6-byte machine tag in an OpKey advertisement (PROTOCOL.md 2.4).
pub type MachineTag = [u8; 6];

/// What a transport method returns.
pub type TransportFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TransportError>> + Send + 'a>>;

/// One advertiser seen by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// The platform's handle for the advertiser (a MAC address, a CoreBluetooth UUID, a
    /// socket address). Used only to connect; never stored.
    pub peripheral_id: String,
    /// The machine tag from the manufacturer data.
    pub tag: MachineTag,
    /// Signal strength in dBm, when the platform reports it.
    pub rssi: Option<i16>,
}

/// An open GATT connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BleConnection {
    /// The transport's handle for this connection.
    pub handle: u64,
    /// The ATT MTU the connection negotiated (at least 23).
    pub att_mtu: u16,
}

/// Why the radio failed. The shells map their platform errors onto these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("Bluetooth is off")]
    BluetoothOff,
    #[error("the app may not use Bluetooth (permission missing)")]
    PermissionMissing,
    #[error("no such peripheral")]
    NotFound,
    #[error("the radio operation timed out")]
    Timeout,
    #[error("the connection was lost")]
    Disconnected,
    /// A GATT status from the platform; 133 (Android's `GATT_ERROR`) is usually passing.
    #[error("GATT error {status}")]
    Gatt { status: i32 },
    #[error("Bluetooth failed ({reason})")]
    Other { reason: String },
}

impl TransportError {
    /// Worth another connection attempt: the link failed for a reason that usually passes.
    pub fn is_transient(&self) -> bool {
        matches!(self, TransportError::Gatt { .. } | TransportError::Disconnected)
    }
}

/// A Bluetooth LE central, reduced to what an unlock needs.
///
/// Every method may be called from any thread. A handle is valid from `connect` until
/// `disconnect`; `disconnect` is always called once per successful `connect` (also after
/// errors and cancellation), and must be harmless on a link that already dropped.
pub trait BleTransport: Send + Sync {
    /// Scans for advertisers of `service_uuid` (hyphenated, lower case) whose
    /// manufacturer data carries one of `tags`; returns as soon as one was seen, or after
    /// `timeout` with whatever was seen (possibly nothing).
    fn scan(
        &self,
        service_uuid: String,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> TransportFuture<'_, Vec<Advertisement>>;

    /// Connects, discovers the OpKey service and negotiates the MTU.
    fn connect(&self, peripheral_id: String, timeout: Duration) -> TransportFuture<'_, BleConnection>;

    /// Subscribes to `TX` notifications; the machine answers with its Hello.
    fn subscribe(&self, connection: u64) -> TransportFuture<'_, ()>;

    /// Writes one fragment to `RX`.
    fn write(&self, connection: u64, fragment: Vec<u8>) -> TransportFuture<'_, ()>;

    /// The next `TX` notification, in order; [`TransportError::Timeout`] when none
    /// arrives within `timeout`.
    fn next_notification(&self, connection: u64, timeout: Duration) -> TransportFuture<'_, Vec<u8>>;

    fn disconnect(&self, connection: u64) -> TransportFuture<'_, ()>;
}
