//! # opkey-protocol
//!
//! The language the phone, the backend and the machine share:
//!
//! - [`model`]: organizations, operators, machines, keys and a key's state at an instant;
//! - [`phone`]: E.164 phone numbers;
//! - [`invite`]: invite tokens and the short code a person types by hand;
//! - [`auth`]: the messages a phone signs to prove it holds its enrolled key;
//! - [`api`]: the JSON bodies of the admin and operator HTTP APIs, and their error codes;
//! - [`clock`]: the injected source of time;
//! - [`ble`]: the Digital Key unlock over Bluetooth LE — grants, revocation lists, framing,
//!   and the phone's and the machine's state machines;
//! - [`pin`]: Rolling PIN codes (RFC 6238 TOTP) and what a keypad reads from typed digits.
//!
//! This crate is sans-IO: it never opens a socket, a file or a database, never reads
//! the system clock except through [`clock::SystemClock`], and never logs.

pub mod api;
pub mod auth;
pub mod ble;
pub mod clock;
pub mod encoding;
pub mod invite;
pub mod model;
pub mod phone;
pub mod pin;

pub use clock::{Clock, SystemClock};
pub use model::{AccessType, Key, KeyState, Keypad, Machine, Operator, Organization, TelematicsUnit};
pub use phone::PhoneNumber;
