//! The link interface: what a BLE peripheral (or the local socket) feeds the machine for
//! one central. A [`Connection`] owns the link's ATT MTU and its reassembler; it turns
//! notify-subscriptions and RX writes into calls on the [`Machine`] and the machine's
//! answers into TX notifications, fragmented at the MTU (PROTOCOL.md 2.5). It never
//! knows what a message means.

use crate::{Machine, MachineError, MachineEvent};
use opkey_protocol::ble::{FrameError, Reassembler, fragment};
use time::OffsetDateTime;

/// Names one central's connection to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub(crate) u64);

/// What to notify on TX, in order, and what happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub fragments: Vec<Vec<u8>>,
    pub events: Vec<MachineEvent>,
}

/// One central's link.
#[derive(Debug)]
pub struct Connection {
    id: ConnectionId,
    att_mtu: u16,
    reassembler: Reassembler,
}

impl Connection {
    /// The ATT MTU of a link before the MTU exchange.
    pub const DEFAULT_ATT_MTU: u16 = 23;

    pub fn id(&self) -> ConnectionId {
        self.id
    }

    pub fn att_mtu(&self) -> u16 {
        self.att_mtu
    }

    /// The MTU the exchange settled on (at least 23).
    pub fn set_att_mtu(&mut self, att_mtu: u16) -> Result<(), MachineError> {
        if att_mtu < Self::DEFAULT_ATT_MTU {
            return Err(FrameError::MtuTooSmall { att_mtu }.into());
        }
        self.att_mtu = att_mtu;
        Ok(())
    }

    /// The central subscribed to TX: send it a Hello (persisted first).
    pub fn on_subscribe(
        &mut self,
        machine: &mut Machine,
        now: OffsetDateTime,
    ) -> Result<Reply, MachineError> {
        let hello = machine.hello(self.id, now)?;
        self.reply(hello, Vec::new())
    }

    /// One RX write. When it completes a message the machine handles it; a framing error
    /// is answered with Error `Malformed`. An `Err` means nothing may be sent (the state
    /// could not be persisted): drop the link.
    pub fn on_write(
        &mut self,
        machine: &mut Machine,
        fragment: &[u8],
        now: OffsetDateTime,
    ) -> Result<Reply, MachineError> {
        let (message, events) = match self.reassembler.push(fragment) {
            Ok(None) => return Ok(Reply::default()),
            Ok(Some(message)) => machine.receive(self.id, &message, now)?,
            Err(error) => machine.frame_error(self.id, error),
        };
        self.reply(message, events)
    }

    /// The central went away: its outstanding challenge, if any, dies.
    pub fn on_disconnect(self, machine: &mut Machine) {
        machine.disconnected(self.id);
    }

    fn reply(&self, message: Vec<u8>, events: Vec<MachineEvent>) -> Result<Reply, MachineError> {
        let fragments = if message.is_empty() {
            Vec::new()
        } else {
            fragment(&message, self.att_mtu)?
        };
        Ok(Reply { fragments, events })
    }
}

impl Machine {
    /// A central connected, at the default MTU of 23.
    pub fn connect(&mut self) -> Connection {
        Connection {
            id: self.new_connection_id(),
            att_mtu: Connection::DEFAULT_ATT_MTU,
            reassembler: Reassembler::new(),
        }
    }
}
