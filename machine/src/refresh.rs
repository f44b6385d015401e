//! The keypad table fetched from the backend when the unit is online (`POST
//! {server}/machine/v1/keypad`, signed with the machine key exactly like a usage upload:
//! see [`crate::report`]). 200 brings a [`KeypadTable`], which the [`Machine`] keeps only
//! if it checks out and is newer than the one it holds; 204 means the one held is the
//! latest. The machine is locked only to read its version and to apply the answer, never
//! across the request. Never logs or prints the table.

use crate::Machine;
use crate::keypad::TableUpdate;
use crate::report::{MachineClient, ReportError, lock};
use opkey_protocol::Clock;
use opkey_protocol::api::{KeypadTable, MachineKeypadRequest, machine_keypad_message};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// How often `opkey-machine run` asks for a newer table unless told otherwise.
pub const DEFAULT_KEYPAD_REFRESH_EVERY: Duration = Duration::from_secs(300);

/// What one refresh came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// 204: the table held (`version`) is the latest.
    Unchanged { version: u64 },
    /// 200: a table came; it replaced the one held, or was ignored as not newer.
    Table(TableUpdate),
}

/// Fetches a machine's keypad table from the backend.
pub struct KeypadRefresher {
    machine: Arc<Mutex<Machine>>,
    client: MachineClient,
}

impl fmt::Debug for KeypadRefresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeypadRefresher")
            .field("endpoint", &self.client.endpoint().as_str())
            .finish_non_exhaustive()
    }
}

impl KeypadRefresher {
    /// A refresher for `machine` from the backend at `server` (its base URL), signing with
    /// the machine's key (the PKCS#8 the machine was opened with).
    pub fn new(
        machine: Arc<Mutex<Machine>>,
        machine_key_pkcs8: &[u8],
        server: &Url,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ReportError> {
        let client = MachineClient::new(&machine, machine_key_pkcs8, server, "machine/v1/keypad", clock)?;
        Ok(Self { machine, client })
    }

    /// Asks once. A refused or malformed table leaves the one held in place.
    pub async fn refresh(&self) -> Result<Refreshed, ReportError> {
        let (machine_id, known_version) = {
            let machine = lock(&self.machine);
            (machine.machine_id().to_owned(), machine.keypad_table_version())
        };
        let request = MachineKeypadRequest {
            machine_id,
            sent_at: self.client.clock.now(),
            nonce: self.client.nonce()?,
            known_version,
        };
        let body = serde_json::to_vec(&request).expect("a keypad request always serializes");
        let (status, text) = self.client.post(body, machine_keypad_message).await?;
        if status == 204 {
            return Ok(Refreshed::Unchanged {
                version: known_version,
            });
        }
        let table: KeypadTable = serde_json::from_str(&text)
            // serde's message may quote the offending value: keep only where it failed.
            .map_err(|e| {
                ReportError::BadAnswer(format!(
                    "not a keypad table (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
        let update = lock(&self.machine).apply_keypad_table(table)?;
        Ok(Refreshed::Table(update))
    }

    /// Refreshes every `every` (the first right away), forever; each outcome goes to
    /// `on_result`. A failure is retried at the next tick.
    pub async fn run(&self, every: Duration, on_result: impl Fn(Result<Refreshed, ReportError>)) {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            on_result(self.refresh().await);
        }
    }
}
