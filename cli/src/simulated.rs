//! A simulated telematics unit on the core's in-memory radio, for `opkey demo`: the real
//! `opkey-machine` unit (verifier, relay, usage log) behind the core's
//! [`SimulatedPeripheral`] trait. Glue only: it passes fragments both ways; the demo reads
//! the machine's relay, usage log and state directly.

use opkey_core::{MachineTag, OffsetDateTime, SimulatedPeripheral};
use opkey_machine::{Connection, Machine};
use opkey_protocol::ble::machine_tag;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A machine unit, shared between the radio that drives it and the story that watches it.
#[derive(Debug, Clone)]
pub struct SimulatedUnit {
    machine: Arc<Mutex<Machine>>,
}

impl SimulatedUnit {
    pub fn new(machine: Machine) -> Self {
        Self {
            machine: Arc::new(Mutex::new(machine)),
        }
    }

    pub fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The peripheral to put in the radio's range.
    pub fn peripheral(&self) -> Box<dyn SimulatedPeripheral> {
        let tag = machine_tag(self.machine().machine_id());
        Box::new(Peripheral {
            unit: self.clone(),
            link: None,
            tag,
        })
    }
}

struct Peripheral {
    unit: SimulatedUnit,
    link: Option<Connection>,
    tag: MachineTag,
}

impl Peripheral {
    /// One call on the machine; a failure (its state could not be saved) sends nothing,
    /// as a real unit would, and the phone's wait times out.
    fn answer(
        &mut self,
        call: impl FnOnce(
            &mut Connection,
            &mut Machine,
        ) -> Result<opkey_machine::Reply, opkey_machine::MachineError>,
    ) -> Vec<Vec<u8>> {
        let Some(link) = self.link.as_mut() else {
            return Vec::new();
        };
        let result = call(link, &mut self.unit.machine());
        match result {
            Ok(reply) => reply.fragments,
            Err(e) => {
                tracing::error!(error = %e, "the simulated machine failed");
                Vec::new()
            }
        }
    }
}

impl SimulatedPeripheral for Peripheral {
    fn machine_tag(&self) -> MachineTag {
        self.tag
    }

    fn on_connect(&mut self, att_mtu: u16) {
        let mut link = self.unit.machine().connect();
        if let Err(e) = link.set_att_mtu(att_mtu) {
            tracing::error!(error = %e, "the simulated machine refused the MTU");
        }
        self.link = Some(link);
    }

    fn on_subscribe(&mut self, now: OffsetDateTime) -> Vec<Vec<u8>> {
        self.answer(|link, machine| link.on_subscribe(machine, now))
    }

    fn on_write(&mut self, fragment: &[u8], now: OffsetDateTime) -> Vec<Vec<u8>> {
        self.answer(|link, machine| link.on_write(machine, fragment, now))
    }

    fn on_disconnect(&mut self) {
        if let Some(link) = self.link.take() {
            link.on_disconnect(&mut self.unit.machine());
        }
    }
}
