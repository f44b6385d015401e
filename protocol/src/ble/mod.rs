//! # Digital Key over Bluetooth Low Energy (PROTOCOL.md Part 2)
//!
//! The phone unlocks a machine with no network on either side. The machine proves itself
//! first (a signed Hello); the phone answers with one encrypted, signed request; the
//! machine answers with one encrypted Result.
//!
//! - [`grant`]: the issuer-signed Digital Key credential a machine verifies offline;
//! - [`revocation`]: the issuer-signed list of keys a machine must refuse;
//! - [`frame`]: cutting messages into GATT-sized fragments and gluing them back;
//! - [`messages`]: Hello, HelloRequest, Request, Result and Error on the wire;
//! - [`phone`]: the phone's state machine ([`PhoneUnlock`]);
//! - [`machine`]: the machine's state machine ([`MachineVerifier`]);
//! - [`advert`]: the GATT UUIDs and the machine tag a phone scans for.
//!
//! This module never performs I/O, never reads a clock (time is passed in) and never
//! logs. Keys and session secrets never appear in `Debug` output or errors.

pub mod advert;
pub mod crypto;
pub mod frame;
pub mod grant;
pub mod machine;
pub mod messages;
pub mod phone;
pub mod revocation;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod wire;

#[cfg(test)]
mod tests;

pub use advert::{COMPANY_ID, RX_UUID, SERVICE_UUID, TX_UUID, machine_tag};
pub use crypto::{MalformedDerSignature, SignError, der_to_raw, raw_to_der};
pub use frame::{FrameError, MAX_MESSAGE_LEN, Reassembler, fragment};
pub use grant::{Grant, GrantBody, GrantError};
pub use machine::{
    Decision, MachineConfig, MachineState, MachineVerifier, Outcome, Outgoing, RevocationListError,
    RevocationUpdate, SetupError,
};
pub use messages::{Command, Credential, MessageType, ReasonCode, Status};
pub use phone::{PhoneUnlock, PhoneUnlockParams, SignatureNeeded, UnlockError, UnlockOutcome};
pub use revocation::{Revocation, RevocationBody, RevocationError, RevocationList};
pub use wire::{DecodeError, EncodeError};
