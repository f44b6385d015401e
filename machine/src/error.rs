//! The one error type of this crate. Variants name the file or field at fault; none
//! carries key material.

use opkey_protocol::ble::machine::HelloError;
use opkey_protocol::ble::{FrameError, RevocationListError, SetupError};
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} already exists; a machine key is never overwritten")]
    KeyExists { path: PathBuf },
    #[error("{path} does not hold a P-256 PKCS#8 key")]
    BadKeyFile { path: PathBuf },
    #[error("the machine key does not match the provisioning bundle's machine_public_key")]
    KeyMismatch,
    #[error("{path} is not a provisioning bundle: {source}")]
    BadProvisioningFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the provisioning bundle's {field} is not valid base64url")]
    BadProvisioningField { field: &'static str },
    #[error("the provisioning bundle's revocation list was refused: {0}")]
    BadBundleRevocations(RevocationListError),
    #[error("the state file {path} is corrupt: {source}")]
    CorruptState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the state file is format {found}; this machine reads format {expected}")]
    UnsupportedStateFormat { found: u32, expected: u32 },
    #[error("the state file belongs to machine {found}, not {expected}")]
    StateOfAnotherMachine { found: String, expected: String },
    #[error("the verifier cannot start: {0}")]
    Setup(#[from] SetupError),
    #[error("cannot make a Hello: {0}")]
    Hello(#[from] HelloError),
    #[error("revocation list refused: {0}")]
    Revocations(#[from] RevocationListError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the engine cannot start: the immobilizer relay is off")]
    Immobilized,
    #[error("keypad table refused: {0}")]
    KeypadTable(#[from] crate::keypad::KeypadTableError),
}

impl MachineError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| MachineError::Io { path, source }
    }
}
