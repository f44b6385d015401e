//! # Digital Key: the backend as issuer (PROTOCOL.md Part 2)
//!
//! The backend signs what machines verify offline:
//!
//! - [`issuer`]: the P-256 grant-signing key, kept in a file beside the database;
//! - [`grants`]: the grants each enrolled phone holds, issued and renewed inside the
//!   phone's sync transaction;
//! - [`revocations`]: one signed revocation list per machine, re-issued whenever a key
//!   that opens it is deleted, revoked, edited or superseded.
//!
//! This module owns the signing; the queries live in `db`. It never logs key material
//! and never signs outside a database transaction, so what is signed and what is stored
//! never disagree.

pub mod grants;
pub mod issuer;
pub mod revocations;

pub use issuer::{Issuer, IssuerKeyError};
