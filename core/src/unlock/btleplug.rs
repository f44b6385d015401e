//! [`BtleplugTransport`]: the unlock over the computer's own Bluetooth LE radio, through
//! btleplug (BlueZ over D-Bus on Linux). For the desktop and for tests against a mock
//! BlueZ (tests/ble). Feature `btleplug`, off by default: the mobile library never
//! carries it, the phone shells bring their own radio.
//!
//! - **Scan**: discovery filtered on the OpKey service (PROTOCOL.md 2.4); every device
//!   the adapter knows is read for manufacturer data of company `0xFFFF` whose first 6
//!   bytes are a machine tag asked for. The scan ends when every tag asked for was seen,
//!   or at the timeout. BlueZ keeps a device it saw recently for a while: a machine that
//!   just left may still be "seen" and then fail to connect.
//! - **Connect**: connect and discover services (both under the timeout), then find `RX`
//!   and `TX` in the OpKey service. The ATT MTU is the one BlueZ publishes on the
//!   characteristics (`MTU`, BlueZ 5.62 and later); 23, the minimum, when it does not.
//! - **Subscribe**: the notification stream is opened before notifications are turned
//!   on, so the machine's Hello cannot slip past; it is kept per connection and
//!   [`BleTransport::next_notification`] reads `TX` values from it in order.
//! - **Write**: `RX` without response when it allows that, else with response.
//! - **Disconnect**: always forgets the connection; a link that already dropped is fine.
//!
//! Errors from btleplug and BlueZ become [`TransportError`]s by kind (see `map_error`).
//! Create and use the transport inside a Tokio runtime: btleplug's D-Bus connection
//! runs as a task on it. Logs connection handles, counts and outcomes; never an address,
//! a tag or a fragment.

use super::transport::{
    Advertisement, BleConnection, BleTransport, MachineTag, TransportError, TransportFuture,
};
use btleplug::api::{
    Central, CentralState, CharPropFlags, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures_util::stream::{Stream, StreamExt};
use opkey_protocol::ble::advert::MACHINE_TAG_LEN;
use opkey_protocol::ble::{COMPANY_ID, RX_UUID, SERVICE_UUID, TX_UUID};
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The ATT MTU every link has before an exchange; used when the platform does not say.
pub const MIN_ATT_MTU: u16 = 23;
/// The largest ATT MTU BlueZ negotiates.
const MAX_ATT_MTU: u16 = 517;
/// How often a scan looks at what the adapter has seen.
const SCAN_POLL: Duration = Duration::from_millis(100);
/// How long a clean-up step (stop scanning, disconnect after a failed connect) may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(2);

type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

struct Link {
    peripheral: Peripheral,
    rx: Characteristic,
    tx: Characteristic,
    write_type: WriteType,
    /// Opened by `subscribe`; read by `next_notification`, one reader at a time.
    notifications: tokio::sync::Mutex<Option<Notifications>>,
}

/// The desktop's Bluetooth LE central, through btleplug.
pub struct BtleplugTransport {
    adapter: Adapter,
    /// What the last scans saw, by peripheral id, so that `connect` need not look again.
    seen: Mutex<HashMap<String, Peripheral>>,
    links: Mutex<HashMap<u64, Arc<Link>>>,
    next_handle: AtomicU64,
}

impl fmt::Debug for BtleplugTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BtleplugTransport")
            .field("links", &self.links().len())
            .finish_non_exhaustive()
    }
}

impl BtleplugTransport {
    /// The first Bluetooth adapter of the system. [`TransportError::BluetoothOff`] when
    /// there is none (or no Bluetooth service runs), [`TransportError::PermissionMissing`]
    /// when the system bus refuses, [`TransportError::Other`] for any other failure.
    pub async fn new() -> Result<Self, TransportError> {
        let manager = Manager::new().await.map_err(map_error)?;
        let adapter = manager
            .adapters()
            .await
            .map_err(map_error)?
            .into_iter()
            .next()
            .ok_or(TransportError::BluetoothOff)?;
        Ok(Self::with_adapter(adapter))
    }

    /// A transport on a given adapter.
    pub fn with_adapter(adapter: Adapter) -> Self {
        Self {
            adapter,
            seen: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    fn seen(&self) -> MutexGuard<'_, HashMap<String, Peripheral>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn links(&self) -> MutexGuard<'_, HashMap<u64, Arc<Link>>> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn link(&self, handle: u64) -> Result<Arc<Link>, TransportError> {
        self.links()
            .get(&handle)
            .cloned()
            .ok_or(TransportError::Disconnected)
    }

    async fn scan_now(
        &self,
        service_uuid: String,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> Result<Vec<Advertisement>, TransportError> {
        let deadline = Instant::now() + timeout;
        let filter = ScanFilter {
            services: vec![service_uuid.parse().map_err(|_| TransportError::Other {
                reason: format!("{service_uuid:?} is not a UUID"),
            })?],
        };
        if self.adapter.adapter_state().await.map_err(map_error)? == CentralState::PoweredOff {
            return Err(TransportError::BluetoothOff);
        }
        self.adapter.start_scan(filter).await.map_err(map_error)?;
        let mut seen: Vec<Advertisement> = Vec::new();
        let result = loop {
            if let Err(e) = self.look(&tags, &mut seen).await {
                break Err(e);
            }
            let all_found = !tags.is_empty() && tags.iter().all(|t| seen.iter().any(|a| a.tag == *t));
            let left = deadline.saturating_duration_since(Instant::now());
            if all_found || left.is_zero() {
                break Ok(());
            }
            tokio::time::sleep(left.min(SCAN_POLL)).await;
        };
        // Always stop discovery, also after a failure; a failure to stop changes nothing here.
        if let Ok(Err(e)) = tokio::time::timeout(CLEANUP_TIMEOUT, self.adapter.stop_scan()).await {
            tracing::debug!(error = %map_error(e), "stopping the scan failed");
        }
        tracing::debug!(seen = seen.len(), wanted = tags.len(), "scan finished");
        result.map(|()| seen)
    }

    /// Adds to `seen` the OpKey advertisers the adapter knows whose tag is wanted.
    async fn look(&self, tags: &[MachineTag], seen: &mut Vec<Advertisement>) -> Result<(), TransportError> {
        for peripheral in self.adapter.peripherals().await.map_err(map_error)? {
            // A device that vanished between listing and reading is simply not seen.
            let Ok(Some(properties)) = peripheral.properties().await else {
                continue;
            };
            let Some(tag) = tag_in(&properties.manufacturer_data) else {
                continue;
            };
            if !tags.is_empty() && !tags.contains(&tag) {
                continue;
            }
            let peripheral_id = peripheral.id().to_string();
            if seen.iter().any(|a| a.peripheral_id == peripheral_id) {
                continue;
            }
            seen.push(Advertisement {
                peripheral_id: peripheral_id.clone(),
                tag,
                rssi: properties.rssi,
            });
            self.seen().insert(peripheral_id, peripheral);
        }
        Ok(())
    }

    /// The peripheral a scan saw, or one the adapter knows by that id.
    async fn peripheral(&self, peripheral_id: &str) -> Result<Peripheral, TransportError> {
        if let Some(peripheral) = self.seen().get(peripheral_id).cloned() {
            return Ok(peripheral);
        }
        self.adapter
            .peripherals()
            .await
            .map_err(map_error)?
            .into_iter()
            .find(|p| p.id().to_string() == peripheral_id)
            .ok_or(TransportError::NotFound)
    }

    async fn connect_now(
        &self,
        peripheral_id: String,
        timeout: Duration,
    ) -> Result<BleConnection, TransportError> {
        let deadline = Instant::now() + timeout;
        let peripheral = tokio::time::timeout(timeout, self.peripheral(&peripheral_id))
            .await
            .map_err(|_| TransportError::Timeout)??;
        let connecting = async {
            match peripheral.connect().await {
                Ok(()) => {}
                // Still connected (another app, or a link that outlived its handle): use it.
                Err(e) if format!("{e:?}").contains("org.bluez.Error.AlreadyConnected") => {}
                Err(e) => return Err(map_error(e)),
            }
            peripheral.discover_services().await.map_err(map_error)
        };
        let connected = match tokio::time::timeout_at(deadline, connecting).await {
            Err(_) => Err(TransportError::Timeout),
            Ok(result) => result.and_then(|()| opkey_characteristics(&peripheral)),
        };
        let (rx, tx) = match connected {
            Ok(found) => found,
            Err(e) => {
                // Half a connection is still a connection: drop it.
                let _ = tokio::time::timeout(CLEANUP_TIMEOUT, peripheral.disconnect()).await;
                return Err(e);
            }
        };
        let write_type = if rx.properties.contains(CharPropFlags::WRITE_WITHOUT_RESPONSE) {
            WriteType::WithoutResponse
        } else {
            WriteType::WithResponse
        };
        let att_mtu = peripheral.mtu().clamp(MIN_ATT_MTU, MAX_ATT_MTU);
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.links().insert(
            handle,
            Arc::new(Link {
                peripheral,
                rx,
                tx,
                write_type,
                notifications: tokio::sync::Mutex::new(None),
            }),
        );
        tracing::debug!(handle, att_mtu, ?write_type, "connected");
        Ok(BleConnection { handle, att_mtu })
    }

    async fn subscribe_now(&self, handle: u64) -> Result<(), TransportError> {
        let link = self.link(handle)?;
        // Listen first, then ask for notifications: the Hello follows at once.
        let stream = link
            .peripheral
            .notifications()
            .await
            .map_err(|e| on_link(map_error(e)))?;
        *link.notifications.lock().await = Some(stream);
        link.peripheral
            .subscribe(&link.tx)
            .await
            .map_err(|e| on_link(map_error(e)))
    }

    async fn write_now(&self, handle: u64, fragment: Vec<u8>) -> Result<(), TransportError> {
        let link = self.link(handle)?;
        link.peripheral
            .write(&link.rx, &fragment, link.write_type)
            .await
            .map_err(|e| on_link(map_error(e)))
    }

    async fn next_notification_now(&self, handle: u64, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let link = self.link(handle)?;
        let mut notifications = link.notifications.lock().await;
        let Some(stream) = notifications.as_mut() else {
            return Err(TransportError::Other {
                reason: "no notifications before subscribing".into(),
            });
        };
        let next_tx = async {
            while let Some(notification) = stream.next().await {
                if notification.uuid.as_u128() == TX_UUID {
                    return Some(notification.value);
                }
            }
            None
        };
        match tokio::time::timeout(timeout, next_tx).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(TransportError::Disconnected),
            // Quiet: a link that dropped is a disconnect, not a slow machine.
            Err(_) => match tokio::time::timeout(CLEANUP_TIMEOUT, link.peripheral.is_connected()).await {
                Ok(Ok(false)) => Err(TransportError::Disconnected),
                _ => Err(TransportError::Timeout),
            },
        }
    }

    async fn disconnect_now(&self, handle: u64) -> Result<(), TransportError> {
        let Some(link) = self.links().remove(&handle) else {
            return Ok(());
        };
        link.notifications.lock().await.take();
        let result = match link.peripheral.disconnect().await.map_err(map_error) {
            Ok(()) | Err(TransportError::Disconnected | TransportError::NotFound) => Ok(()),
            Err(e) => Err(e),
        };
        tracing::debug!(handle, ok = result.is_ok(), "disconnected");
        result
    }
}

/// The tag in an advertisement's manufacturer data: company `0xFFFF`, then 6 bytes
/// (BlueZ strips the company id into the map's key).
fn tag_in(manufacturer_data: &HashMap<u16, Vec<u8>>) -> Option<MachineTag> {
    manufacturer_data
        .get(&COMPANY_ID)?
        .get(..MACHINE_TAG_LEN)?
        .try_into()
        .ok()
}

/// `RX` (writable) and `TX` (notifying) in the OpKey service of a connected peripheral.
fn opkey_characteristics(
    peripheral: &Peripheral,
) -> Result<(Characteristic, Characteristic), TransportError> {
    let mut rx = None;
    let mut tx = None;
    for c in peripheral.characteristics() {
        if c.service_uuid.as_u128() != SERVICE_UUID {
            continue;
        }
        if c.uuid.as_u128() == RX_UUID
            && c.properties
                .intersects(CharPropFlags::WRITE | CharPropFlags::WRITE_WITHOUT_RESPONSE)
        {
            rx = Some(c);
        } else if c.uuid.as_u128() == TX_UUID
            && c.properties
                .intersects(CharPropFlags::NOTIFY | CharPropFlags::INDICATE)
        {
            tx = Some(c);
        }
    }
    match (rx, tx) {
        (Some(rx), Some(tx)) => Ok((rx, tx)),
        _ => Err(TransportError::Other {
            reason: "the peripheral has no usable OpKey service (RX and TX)".into(),
        }),
    }
}

/// On an open link, a peripheral that is gone is a lost connection.
fn on_link(e: TransportError) -> TransportError {
    match e {
        TransportError::NotFound => TransportError::Disconnected,
        e => e,
    }
}

/// btleplug's errors, and the BlueZ / D-Bus errors it wraps, as [`TransportError`]s.
///
/// btleplug passes D-Bus failures on as an opaque error whose debug form carries the
/// D-Bus error name; that name decides:
/// - Bluetooth unavailable: `org.bluez.Error.NotReady` (adapter off), no `org.bluez`
///   service on the bus, no adapter → `BluetoothOff`;
/// - `org.freedesktop.DBus.Error.AccessDenied` → `PermissionMissing`;
/// - `org.bluez.Error.NotConnected` → `Disconnected`; `org.bluez.Error.Failed` and
///   `InProgress` (a connection aborted or busy, usually passing) → `Disconnected`, so
///   the driver tries again;
/// - ATT refusals (`NotPermitted`, `NotAuthorized`, `InvalidValueLength`,
///   `NotSupported`) → `Gatt` with the ATT error code;
/// - `org.bluez.Error.DoesNotExist`, unknown object → `NotFound`;
/// - no reply in time, service discovery timed out → `Timeout`;
/// - anything else → `Other` with btleplug's message.
fn map_error(e: btleplug::Error) -> TransportError {
    use btleplug::Error;
    match e {
        Error::PermissionDenied => TransportError::PermissionMissing,
        Error::DeviceNotFound => TransportError::NotFound,
        Error::NotConnected => TransportError::Disconnected,
        Error::NoAdapterAvailable => TransportError::BluetoothOff,
        Error::TimedOut(_) => TransportError::Timeout,
        e => classify(&format!("{e:?}")).unwrap_or_else(|| TransportError::Other {
            reason: e.to_string(),
        }),
    }
}

fn classify(debug: &str) -> Option<TransportError> {
    const BY_NAME: &[(&str, TransportError)] = &[
        ("org.bluez.Error.NotReady", TransportError::BluetoothOff),
        (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            TransportError::BluetoothOff,
        ),
        ("NoBluetoothAdapters", TransportError::BluetoothOff),
        (
            "org.freedesktop.DBus.Error.AccessDenied",
            TransportError::PermissionMissing,
        ),
        ("org.bluez.Error.NotConnected", TransportError::Disconnected),
        ("org.bluez.Error.Failed", TransportError::Disconnected),
        ("org.bluez.Error.InProgress", TransportError::Disconnected),
        (
            "org.bluez.Error.NotPermitted",
            TransportError::Gatt { status: 0x03 },
        ),
        (
            "org.bluez.Error.NotAuthorized",
            TransportError::Gatt { status: 0x08 },
        ),
        (
            "org.bluez.Error.InvalidValueLength",
            TransportError::Gatt { status: 0x0d },
        ),
        (
            "org.bluez.Error.NotSupported",
            TransportError::Gatt { status: 0x06 },
        ),
        ("org.bluez.Error.DoesNotExist", TransportError::NotFound),
        (
            "org.freedesktop.DBus.Error.UnknownObject",
            TransportError::NotFound,
        ),
        ("org.freedesktop.DBus.Error.NoReply", TransportError::Timeout),
        ("org.freedesktop.DBus.Error.Timeout", TransportError::Timeout),
        ("ServiceDiscoveryTimedOut", TransportError::Timeout),
    ];
    BY_NAME
        .iter()
        .find(|(name, _)| debug.contains(name))
        .map(|(_, e)| e.clone())
}

impl BleTransport for BtleplugTransport {
    fn scan(
        &self,
        service_uuid: String,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> TransportFuture<'_, Vec<Advertisement>> {
        Box::pin(self.scan_now(service_uuid, tags, timeout))
    }

    fn connect(&self, peripheral_id: String, timeout: Duration) -> TransportFuture<'_, BleConnection> {
        Box::pin(self.connect_now(peripheral_id, timeout))
    }

    fn subscribe(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(self.subscribe_now(connection))
    }

    fn write(&self, connection: u64, fragment: Vec<u8>) -> TransportFuture<'_, ()> {
        Box::pin(self.write_now(connection, fragment))
    }

    fn next_notification(&self, connection: u64, timeout: Duration) -> TransportFuture<'_, Vec<u8>> {
        Box::pin(self.next_notification_now(connection, timeout))
    }

    fn disconnect(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(self.disconnect_now(connection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_read_from_company_0xffff_only() {
        let tag = [1, 2, 3, 4, 5, 6];
        let mut data = HashMap::new();
        assert_eq!(tag_in(&data), None);
        data.insert(0x004c, tag.to_vec());
        assert_eq!(tag_in(&data), None, "another company's data");
        data.insert(COMPANY_ID, vec![1, 2, 3]);
        assert_eq!(tag_in(&data), None, "too short for a tag");
        data.insert(COMPANY_ID, tag.to_vec());
        assert_eq!(tag_in(&data), Some(tag));
        let machine = "mch_aaaaaaaaaaaaaaaa";
        let advertised = opkey_protocol::ble::advert::manufacturer_data(machine);
        data.insert(COMPANY_ID, advertised[2..].to_vec());
        assert_eq!(tag_in(&data), Some(opkey_protocol::ble::machine_tag(machine)));
    }

    #[test]
    fn bluez_errors_map_by_kind() {
        use btleplug::Error;
        assert_eq!(
            map_error(Error::PermissionDenied),
            TransportError::PermissionMissing
        );
        assert_eq!(map_error(Error::DeviceNotFound), TransportError::NotFound);
        assert_eq!(map_error(Error::NotConnected), TransportError::Disconnected);
        assert_eq!(map_error(Error::NoAdapterAvailable), TransportError::BluetoothOff);
        assert_eq!(
            map_error(Error::TimedOut(Duration::from_secs(1))),
            TransportError::Timeout
        );
        let dbus = |name: &str| Error::Other(format!("D-Bus error: boom ({name})").into());
        assert_eq!(
            map_error(dbus("org.bluez.Error.NotReady")),
            TransportError::BluetoothOff
        );
        assert_eq!(
            map_error(dbus("org.freedesktop.DBus.Error.AccessDenied")),
            TransportError::PermissionMissing
        );
        assert!(map_error(dbus("org.bluez.Error.Failed")).is_transient());
        assert_eq!(
            map_error(dbus("org.bluez.Error.NotPermitted")),
            TransportError::Gatt { status: 3 }
        );
        assert_eq!(
            on_link(map_error(dbus("org.freedesktop.DBus.Error.UnknownObject"))),
            TransportError::Disconnected
        );
        assert_eq!(
            map_error(Error::RuntimeError("odd".into())),
            TransportError::Other {
                reason: "Runtime Error: odd".into()
            }
        );
    }
}
