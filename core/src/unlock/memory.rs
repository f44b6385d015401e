//! [`InMemoryTransport`]: a Bluetooth LE central joined in memory to simulated machines,
//! for tests and the desktop demo. A machine is anything that implements
//! [`SimulatedPeripheral`] (the `opkey-machine` crate's `Machine` and `Connection` do,
//! with a few lines of glue; the core does not depend on that crate).
//!
//! The link is as unreliable as it is told to be ([`LinkConditions`]): latency per write
//! and per notification (the connection interval), ATT MTU, lost and corrupted fragments,
//! links that drop after so many fragments, and scripted failures (Bluetooth off, a
//! missing permission, GATT 133 on connect). It counts what it did ([`TransportStats`]),
//! so tests can check that every connection was closed.
//!
//! Time is tokio's (for latency and timeouts) and the given [`Clock`] (the machine's RTC).
//! No peripheral is ever called across an `.await`.

use super::transport::{
    Advertisement, BleConnection, BleTransport, MachineTag, TransportError, TransportFuture,
};
use opkey_protocol::Clock;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A BLE peripheral's side of the OpKey GATT service, driven by the transport.
pub trait SimulatedPeripheral: Send {
    /// The machine tag it advertises.
    fn machine_tag(&self) -> MachineTag;
    /// A central connected with this ATT MTU.
    fn on_connect(&mut self, att_mtu: u16);
    /// The central subscribed to `TX`: the fragments to notify (the Hello).
    fn on_subscribe(&mut self, now: OffsetDateTime) -> Vec<Vec<u8>>;
    /// One `RX` write: the fragments to notify in answer (often none).
    fn on_write(&mut self, fragment: &[u8], now: OffsetDateTime) -> Vec<Vec<u8>>;
    /// The central went away.
    fn on_disconnect(&mut self);
}

/// How the simulated radio behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConditions {
    /// The ATT MTU every connection negotiates (23 to 517).
    pub att_mtu: u16,
    /// Delay of each write and of each notification (one connection interval).
    pub latency: Duration,
    /// How long a scan takes to see a machine in range.
    pub scan_delay: Duration,
    /// Chance (0 to 1) that a fragment, in either direction, is lost.
    pub drop_probability: f64,
    /// Chance (0 to 1) that a fragment, in either direction, has a byte changed.
    pub corrupt_probability: f64,
    /// The link drops after this many fragments (both directions) on one connection.
    pub disconnect_after_fragments: Option<u32>,
    /// Seed of the fault dice, so a failing run can be replayed.
    pub seed: u64,
}

impl Default for LinkConditions {
    /// A perfect link at MTU 185 with no delay.
    fn default() -> Self {
        Self {
            att_mtu: 185,
            latency: Duration::ZERO,
            scan_delay: Duration::ZERO,
            drop_probability: 0.0,
            corrupt_probability: 0.0,
            disconnect_after_fragments: None,
            seed: 0x0b5e_55ed,
        }
    }
}

/// What the transport did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub scans: u32,
    /// `connect` calls, failed ones included.
    pub connect_calls: u32,
    pub connections: u32,
    /// `disconnect` calls.
    pub disconnect_calls: u32,
    /// Connections open right now.
    pub open_connections: u32,
    pub writes: u32,
    pub notifications: u32,
    pub dropped: u32,
    pub corrupted: u32,
    /// Links the conditions dropped.
    pub forced_disconnects: u32,
}

struct Slot {
    id: String,
    tag: MachineTag,
    rssi: i16,
    in_range: bool,
    peripheral: Box<dyn SimulatedPeripheral>,
}

struct Link {
    slot: usize,
    queue: VecDeque<Vec<u8>>,
    open: bool,
    fragments: u32,
}

struct State {
    conditions: LinkConditions,
    slots: Vec<Slot>,
    links: HashMap<u64, Link>,
    next_handle: u64,
    scan_failure: Option<TransportError>,
    connect_failures: VecDeque<TransportError>,
    stats: TransportStats,
    dice: u64,
}

/// Simulated machines around a simulated phone radio.
pub struct InMemoryTransport {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    wake: Notify,
}

impl fmt::Debug for InMemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("InMemoryTransport")
            .field("peripherals", &s.slots.len())
            .field("conditions", &s.conditions)
            .field("stats", &s.stats)
            .finish()
    }
}

impl InMemoryTransport {
    /// No machines yet; `clock` is the machines' RTC.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let conditions = LinkConditions::default();
        Self {
            clock,
            state: Mutex::new(State {
                dice: conditions.seed | 1,
                conditions,
                slots: Vec::new(),
                links: HashMap::new(),
                next_handle: 1,
                scan_failure: None,
                connect_failures: VecDeque::new(),
                stats: TransportStats::default(),
            }),
            wake: Notify::new(),
        }
    }

    /// Puts a machine in range; returns its peripheral id.
    pub fn add_peripheral(&self, peripheral: Box<dyn SimulatedPeripheral>) -> String {
        let mut s = self.lock();
        let id = format!("sim-{}", s.slots.len() + 1);
        let tag = peripheral.machine_tag();
        let rssi = -50 - 5 * s.slots.len() as i16;
        s.slots.push(Slot {
            id: id.clone(),
            tag,
            rssi,
            in_range: true,
            peripheral,
        });
        id
    }

    /// Moves a machine out of (or back into) range. Out of range, it neither advertises
    /// nor accepts connections, and its open links drop.
    pub fn set_in_range(&self, peripheral_id: &str, in_range: bool) {
        let mut s = self.lock();
        let Some(index) = s.slots.iter().position(|p| p.id == peripheral_id) else {
            return;
        };
        s.slots[index].in_range = in_range;
        if !in_range {
            let handles: Vec<u64> = s
                .links
                .iter()
                .filter(|(_, l)| l.slot == index && l.open)
                .map(|(h, _)| *h)
                .collect();
            for h in handles {
                s.drop_link(h);
            }
        }
        drop(s);
        self.wake.notify_waiters();
    }

    pub fn set_conditions(&self, conditions: LinkConditions) {
        let mut s = self.lock();
        s.dice = conditions.seed | 1;
        s.conditions = conditions;
    }

    pub fn conditions(&self) -> LinkConditions {
        self.lock().conditions.clone()
    }

    /// Every scan fails with `error` until called with `None` (Bluetooth off, no
    /// permission).
    pub fn fail_scans_with(&self, error: Option<TransportError>) {
        self.lock().scan_failure = error;
    }

    /// The next `connect` fails with `error` (e.g. `Gatt { status: 133 }`); queued in
    /// order when called several times.
    pub fn fail_next_connect(&self, error: TransportError) {
        self.lock().connect_failures.push_back(error);
    }

    pub fn stats(&self) -> TransportStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn latency(&self) -> Duration {
        self.lock().conditions.latency
    }

    async fn scan_now(
        &self,
        tags: Vec<MachineTag>,
        timeout: Duration,
    ) -> Result<Vec<Advertisement>, TransportError> {
        let (seen, delay) = {
            let mut s = self.lock();
            s.stats.scans += 1;
            if let Some(e) = &s.scan_failure {
                return Err(e.clone());
            }
            let seen: Vec<Advertisement> = s
                .slots
                .iter()
                .filter(|p| p.in_range && (tags.is_empty() || tags.contains(&p.tag)))
                .map(|p| Advertisement {
                    peripheral_id: p.id.clone(),
                    tag: p.tag,
                    rssi: Some(p.rssi),
                })
                .collect();
            (seen, s.conditions.scan_delay)
        };
        if seen.is_empty() {
            // A real scan finds nothing only by waiting it out.
            tokio::time::sleep(timeout).await;
            return Ok(seen);
        }
        tokio::time::sleep(delay.min(timeout)).await;
        Ok(seen)
    }

    async fn connect_now(
        &self,
        peripheral_id: String,
        timeout: Duration,
    ) -> Result<BleConnection, TransportError> {
        tokio::time::sleep(self.latency()).await;
        let connected = self.lock().connect(&peripheral_id);
        if connected == Err(TransportError::Timeout) {
            // Out of range: a real connect gives up only when its time is up.
            tokio::time::sleep(timeout).await;
        }
        connected
    }

    fn subscribe_now(&self, handle: u64) -> Result<(), TransportError> {
        let now = self.clock.now();
        let mut s = self.lock();
        let slot = s.open_link(handle)?.slot;
        let hello = s.slots[slot].peripheral.on_subscribe(now);
        s.notify(handle, hello);
        drop(s);
        self.wake.notify_waiters();
        Ok(())
    }

    async fn write_now(&self, handle: u64, mut fragment: Vec<u8>) -> Result<(), TransportError> {
        tokio::time::sleep(self.latency()).await;
        let now = self.clock.now();
        let mut s = self.lock();
        let slot = s.open_link(handle)?.slot;
        s.stats.writes += 1;
        if s.count_fragment(handle) {
            drop(s);
            self.wake.notify_waiters();
            return Err(TransportError::Disconnected);
        }
        if s.roll(|c| c.drop_probability) {
            s.stats.dropped += 1;
            return Ok(());
        }
        if s.roll(|c| c.corrupt_probability) {
            s.corrupt(&mut fragment);
        }
        let answer = s.slots[slot].peripheral.on_write(&fragment, now);
        s.notify(handle, answer);
        drop(s);
        self.wake.notify_waiters();
        Ok(())
    }

    async fn next_notification_now(&self, handle: u64, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let deadline = Instant::now() + timeout;
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (next, latency) = {
                let mut s = self.lock();
                (s.next_notification(handle), s.conditions.latency)
            };
            match next {
                Ok(Some(fragment)) => {
                    tokio::time::sleep(latency).await;
                    return Ok(fragment);
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Err(TransportError::Timeout);
            }
        }
    }

    fn disconnect_now(&self, handle: u64) {
        let mut s = self.lock();
        s.stats.disconnect_calls += 1;
        s.drop_link(handle);
        s.links.remove(&handle);
        drop(s);
        self.wake.notify_waiters();
    }
}

impl State {
    fn connect(&mut self, peripheral_id: &str) -> Result<BleConnection, TransportError> {
        self.stats.connect_calls += 1;
        if let Some(e) = self.connect_failures.pop_front() {
            return Err(e);
        }
        let index = self
            .slots
            .iter()
            .position(|p| p.id == peripheral_id)
            .ok_or(TransportError::NotFound)?;
        if !self.slots[index].in_range {
            return Err(TransportError::Timeout);
        }
        let att_mtu = self.conditions.att_mtu;
        self.slots[index].peripheral.on_connect(att_mtu);
        let handle = self.next_handle;
        self.next_handle += 1;
        self.links.insert(
            handle,
            Link {
                slot: index,
                queue: VecDeque::new(),
                open: true,
                fragments: 0,
            },
        );
        self.stats.connections += 1;
        self.stats.open_connections += 1;
        Ok(BleConnection { handle, att_mtu })
    }

    /// A queued notification, `None` while the link is open and quiet.
    fn next_notification(&mut self, handle: u64) -> Result<Option<Vec<u8>>, TransportError> {
        let link = self.links.get_mut(&handle).ok_or(TransportError::Disconnected)?;
        match link.queue.pop_front() {
            Some(fragment) => Ok(Some(fragment)),
            None if link.open => Ok(None),
            None => Err(TransportError::Disconnected),
        }
    }

    fn open_link(&mut self, handle: u64) -> Result<&mut Link, TransportError> {
        match self.links.get_mut(&handle) {
            Some(link) if link.open => Ok(link),
            _ => Err(TransportError::Disconnected),
        }
    }

    /// Queues `fragments` as notifications, through the link's faults.
    fn notify(&mut self, handle: u64, fragments: Vec<Vec<u8>>) {
        for mut fragment in fragments {
            if self.count_fragment(handle) {
                return;
            }
            self.stats.notifications += 1;
            if self.roll(|c| c.drop_probability) {
                self.stats.dropped += 1;
                continue;
            }
            if self.roll(|c| c.corrupt_probability) {
                self.corrupt(&mut fragment);
            }
            if let Some(link) = self.links.get_mut(&handle) {
                link.queue.push_back(fragment);
            }
        }
    }

    /// Counts one fragment on the link; true when that drops the link.
    fn count_fragment(&mut self, handle: u64) -> bool {
        let limit = self.conditions.disconnect_after_fragments;
        let Some(link) = self.links.get_mut(&handle) else {
            return true;
        };
        link.fragments += 1;
        if limit.is_some_and(|n| link.fragments > n) {
            self.stats.forced_disconnects += 1;
            self.drop_link(handle);
            return true;
        }
        false
    }

    /// The link goes down: the peripheral hears it once; queued notifications stay
    /// readable, then reads fail.
    fn drop_link(&mut self, handle: u64) {
        let Some(link) = self.links.get_mut(&handle) else {
            return;
        };
        if !link.open {
            return;
        }
        link.open = false;
        let slot = link.slot;
        self.stats.open_connections -= 1;
        self.slots[slot].peripheral.on_disconnect();
    }

    fn roll(&mut self, chance: impl Fn(&LinkConditions) -> f64) -> bool {
        let p = chance(&self.conditions);
        p > 0.0 && ((self.next_random() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn corrupt(&mut self, fragment: &mut [u8]) {
        if fragment.is_empty() {
            return;
        }
        let at = (self.next_random() % fragment.len() as u64) as usize;
        fragment[at] ^= 0x5a;
        self.stats.corrupted += 1;
    }

    /// xorshift64*: reproducible dice, not cryptography.
    fn next_random(&mut self) -> u64 {
        let mut x = self.dice;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.dice = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl BleTransport for InMemoryTransport {
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

    fn subscribe(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move { self.subscribe_now(connection) })
    }

    fn write(&self, connection: u64, fragment: Vec<u8>) -> TransportFuture<'_, ()> {
        Box::pin(self.write_now(connection, fragment))
    }

    fn next_notification(&self, connection: u64, timeout: Duration) -> TransportFuture<'_, Vec<u8>> {
        Box::pin(self.next_notification_now(connection, timeout))
    }

    fn disconnect(&self, connection: u64) -> TransportFuture<'_, ()> {
        Box::pin(async move {
            self.disconnect_now(connection);
            Ok(())
        })
    }
}
