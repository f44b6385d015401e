//! The machine's identity: its long-term P-256 key (a PKCS#8 file made once by `keygen`,
//! mode 0600, never overwritten) and the provisioning bundle the backend hands out
//! (`MachineProvisioning`, JSON). Never prints or logs the private key; only the public
//! key (SEC1 uncompressed, base64url) leaves this module.

use crate::MachineError;
use opkey_protocol::api::MachineProvisioning;
use opkey_protocol::encoding::{b64, unb64};
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Creates a machine key at `path` (refusing to overwrite anything) and returns its public
/// key, base64url, for `opkey admin machine create --ble-public-key`.
pub fn generate_key_file(path: &Path, rng: &dyn SecureRandom) -> Result<String, MachineError> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map_err(|_| MachineError::BadKeyFile { path: path.into() })?;
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let public_key =
        public_key_of(&pkcs8, rng).ok_or_else(|| MachineError::BadKeyFile { path: path.into() })?;

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => MachineError::KeyExists { path: path.into() },
        _ => MachineError::Io {
            path: path.into(),
            source: e,
        },
    })?;
    file.write_all(&pkcs8)
        .and_then(|()| file.sync_all())
        .map_err(MachineError::io(path))?;
    Ok(b64(&public_key))
}

/// Reads a machine key file written by [`generate_key_file`].
pub fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, MachineError> {
    let pkcs8 = Zeroizing::new(fs::read(path).map_err(MachineError::io(path))?);
    if public_key_of(&pkcs8, &ring::rand::SystemRandom::new()).is_none() {
        return Err(MachineError::BadKeyFile { path: path.into() });
    }
    Ok(pkcs8)
}

/// The public key (SEC1 uncompressed) of a PKCS#8 P-256 key, or `None` if it is not one.
pub fn public_key_of(pkcs8: &[u8], rng: &dyn SecureRandom) -> Option<Vec<u8>> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
        .ok()
        .map(|key| key.public_key().as_ref().to_vec())
}

/// Reads a provisioning bundle (the JSON of `GET /admin/v1/machines/{id}/provisioning`).
pub fn read_provisioning(path: &Path) -> Result<MachineProvisioning, MachineError> {
    let text = fs::read(path).map_err(MachineError::io(path))?;
    serde_json::from_slice(&text).map_err(|source| MachineError::BadProvisioningFile {
        path: path.into(),
        source,
    })
}

/// A bundle's binary fields, decoded.
pub(crate) struct Bundle {
    pub issuer_public_key: Vec<u8>,
    pub machine_public_key: Vec<u8>,
    pub revocations: Option<Vec<u8>>,
}

impl Bundle {
    pub(crate) fn decode(provisioning: &MachineProvisioning) -> Result<Self, MachineError> {
        let field =
            |field: &'static str, text: &str| unb64(text).ok_or(MachineError::BadProvisioningField { field });
        Ok(Self {
            issuer_public_key: field("issuer_public_key", &provisioning.issuer_public_key)?,
            machine_public_key: field("machine_public_key", &provisioning.machine_public_key)?,
            revocations: provisioning
                .revocations
                .as_deref()
                .map(|list| field("revocations", list))
                .transpose()?,
        })
    }
}
