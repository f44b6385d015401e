//! # opkey-machine
//!
//! The machine end of the Digital Key: a simulated telematics unit around the protocol's
//! sans-IO [`MachineVerifier`](opkey_protocol::ble::MachineVerifier).
//!
//! - [`machine`]: [`Machine`], the unit — verifier, immobilizer relay, usage log, state;
//! - [`connection`]: [`Connection`], what a BLE peripheral feeds per central (subscribe,
//!   write, disconnect) and gets back (TX fragments and [`MachineEvent`]s);
//! - [`relay`]: the immobilizer relay and engine, driven by explicit instants;
//! - [`usage`]: the usage sessions the machine records;
//! - [`store`]: the persisted state, as an atomically replaced JSON file or in memory;
//! - [`provision`]: the machine key file and the backend's provisioning bundle;
//! - [`socket`]: the same frames over a local TCP socket, for the `opkey-machine` process;
//! - [`report`]: the usage sessions sent to the backend when the unit is online;
//! - [`keypad`]: the keypad and card reader's verifier (Rolling PIN, Static PIN, cards),
//!   throttling and lockout;
//! - [`refresh`]: the keypad table fetched from the backend when the unit is online.
//!
//! Everything but [`socket`], [`report`] and [`refresh`] is synchronous; time is passed
//! in (`now`, the machine's RTC) and timers advance only in [`Machine::tick`], so tests are
//! deterministic. Keys, PIN seeds, Static PINs and typed digits never appear in `Debug`
//! output, errors or status lines.

pub mod connection;
mod error;
pub mod keypad;
pub mod machine;
pub mod provision;
pub mod refresh;
pub mod relay;
pub mod report;
pub mod socket;
pub mod store;
pub mod usage;

pub use connection::{Connection, ConnectionId, Reply};
pub use error::MachineError;
pub use keypad::{KeypadAccess, KeypadOutcome, KeypadRefusal, KeypadTableError, TableUpdate};
pub use machine::{KeypadReply, Machine, MachineEvent, RelockReason, SharedRandom};
pub use provision::{generate_key_file, read_key_file, read_provisioning};
pub use relay::Relay;
pub use store::{FileStore, MemoryStore, StateStore, StoredState};
pub use usage::{SessionEnd, UsageLog, UsageSession};
