//! The radio the shells lend the core: the foreign [`BleTransport`] (Android's
//! `BluetoothGatt`, iOS's CoreBluetooth) and the adapter that makes it the core's
//! `opkey_core::BleTransport`.
//!
//! Mirrors the core's trait with FFI-friendly types: tags are 6-byte arrays, timeouts are
//! milliseconds. A transport moves fragments and never knows what they mean. Whatever a
//! shell throws becomes a [`TransportError`] (an undeclared exception arrives as
//! [`TransportError::Other`]), never a panic.

use opkey_core::TransportFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A Bluetooth LE central, reduced to what an unlock needs. Every method may be called
/// from any thread; the core calls one at a time per unlock.
///
/// A connection handle is valid from `connect` until `disconnect`; `disconnect` is called
/// once per successful `connect` (also after errors and cancellation) and must be harmless
/// on a link that already dropped.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait BleTransport: Send + Sync {
    /// Scans for advertisers of `service_uuid` (hyphenated, lower case) whose manufacturer
    /// data carries one of `tags` (6 bytes each); returns as soon as one was seen, or
    /// after `timeout_ms` with whatever was seen (an empty list: not in range).
    async fn scan(
        &self,
        service_uuid: String,
        tags: Vec<Vec<u8>>,
        timeout_ms: u64,
    ) -> Result<Vec<Advertisement>, TransportError>;

    /// Connects, discovers the OpKey service and negotiates the MTU.
    async fn connect(&self, peripheral_id: String, timeout_ms: u64) -> Result<BleConnection, TransportError>;

    /// Subscribes to `TX` notifications; the machine answers with its Hello.
    async fn subscribe(&self, connection: u64) -> Result<(), TransportError>;

    /// Writes one fragment to `RX` (with response).
    async fn write(&self, connection: u64, fragment: Vec<u8>) -> Result<(), TransportError>;

    /// The next `TX` notification, in order; throw `Timeout` when none arrives within
    /// `timeout_ms`.
    async fn next_notification(&self, connection: u64, timeout_ms: u64) -> Result<Vec<u8>, TransportError>;

    async fn disconnect(&self, connection: u64) -> Result<(), TransportError>;
}

/// One advertiser a scan saw.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Advertisement {
    /// The platform's handle for the advertiser (a MAC address, a CoreBluetooth UUID);
    /// only passed back to `connect`.
    pub peripheral_id: String,
    /// The 6-byte machine tag from the manufacturer data; any other length is ignored.
    pub tag: Vec<u8>,
    /// Signal strength in dBm, when the platform reports it.
    #[uniffi(default = None)]
    pub rssi: Option<i16>,
}

/// An open GATT connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct BleConnection {
    /// The transport's own handle for this connection.
    pub handle: u64,
    /// The negotiated ATT MTU (at least 23).
    pub att_mtu: u16,
}

/// What a shell's [`BleTransport`] throws: its platform errors mapped onto these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
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
    /// A GATT status from the platform; 133 (Android's `GATT_ERROR`) is usually passing
    /// and retried.
    #[error("GATT error {status}")]
    Gatt { status: i32 },
    /// Anything else, including an exception the shell did not declare.
    #[error("Bluetooth failed ({reason})")]
    Other { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // The first line names the exception and its message; the stack is not for people.
        let reason = e.reason.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        TransportError::Other {
            reason: reason.trim().to_owned(),
        }
    }
}

impl From<TransportError> for opkey_core::TransportError {
    fn from(e: TransportError) -> Self {
        use opkey_core::TransportError as Core;
        match e {
            TransportError::BluetoothOff => Core::BluetoothOff,
            TransportError::PermissionMissing => Core::PermissionMissing,
            TransportError::NotFound => Core::NotFound,
            TransportError::Timeout => Core::Timeout,
            TransportError::Disconnected => Core::Disconnected,
            TransportError::Gatt { status } => Core::Gatt { status },
            TransportError::Other { reason } => Core::Other { reason },
        }
    }
}

impl From<BleConnection> for opkey_core::BleConnection {
    fn from(c: BleConnection) -> Self {
        opkey_core::BleConnection {
            handle: c.handle,
            att_mtu: c.att_mtu,
        }
    }
}

impl Advertisement {
    /// `None` when the tag is not 6 bytes: it cannot name an OpKey machine.
    fn into_core(self) -> Option<opkey_core::Advertisement> {
        Some(opkey_core::Advertisement {
            peripheral_id: self.peripheral_id,
            tag: self.tag.try_into().ok()?,
            rssi: self.rssi,
        })
    }
}

/// A shell's [`BleTransport`] as the core's.
pub(crate) struct ForeignTransport(pub(crate) Arc<dyn BleTransport>);

impl fmt::Debug for ForeignTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignTransport")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl opkey_core::BleTransport for ForeignTransport {
    fn scan(
        &self,
        service_uuid: String,
        tags: Vec<opkey_core::MachineTag>,
        timeout: Duration,
    ) -> TransportFuture<'_, Vec<opkey_core::Advertisement>> {
        let tags = tags.iter().map(|t| t.to_vec()).collect();
        Box::pin(async move {
            let seen = self.0.scan(service_uuid, tags, millis(timeout)).await?;
            Ok(seen.into_iter().filter_map(Advertisement::into_core).collect())
        })
    }

    fn connect(
        &self,
        peripheral_id: String,
        timeout: Duration,
    ) -> TransportFuture<'_, opkey_core::BleConnection> {
        Box::pin(async move { Ok(self.0.connect(peripheral_id, millis(timeout)).await?.into()) })
    }

    fn subscribe(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move { Ok(self.0.subscribe(connection).await?) })
    }

    fn write(&self, connection: u64, fragment: Vec<u8>) -> TransportFuture<'_, ()> {
        Box::pin(async move { Ok(self.0.write(connection, fragment).await?) })
    }

    fn next_notification(&self, connection: u64, timeout: Duration) -> TransportFuture<'_, Vec<u8>> {
        Box::pin(async move { Ok(self.0.next_notification(connection, millis(timeout)).await?) })
    }

    fn disconnect(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move { Ok(self.0.disconnect(connection).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undeclared_exception_in_the_transport_is_a_typed_error_named_by_its_first_line() {
        let e = TransportError::from(uniffi::UnexpectedUniFFICallbackError::new(
            "java.lang.IllegalStateException: GATT busy\n\tat Radio.write(Radio.kt:9)\n",
        ));
        assert_eq!(
            e,
            TransportError::Other {
                reason: "java.lang.IllegalStateException: GATT busy".into()
            }
        );
        assert_eq!(
            opkey_core::TransportError::from(e),
            opkey_core::TransportError::Other {
                reason: "java.lang.IllegalStateException: GATT busy".into()
            }
        );
    }

    #[test]
    fn an_advertisement_whose_tag_is_not_six_bytes_is_ignored() {
        let ad = |tag: Vec<u8>| Advertisement {
            peripheral_id: "AA:BB".into(),
            tag,
            rssi: Some(-60),
        };
        assert_eq!(
            ad(vec![1, 2, 3, 4, 5, 6]).into_core().map(|a| a.tag),
            Some([1, 2, 3, 4, 5, 6])
        );
        assert_eq!(ad(vec![1, 2, 3]).into_core(), None);
    }
}
