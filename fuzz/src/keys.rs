//! Keys made fresh at start-up for the fuzz targets: an issuer (the backend's grant and
//! revocation-list signing key) and a machine. They live only in this process's memory,
//! so a fuzz input can never carry a valid signature under them by anything but forgery.

use opkey_protocol::ble::{Grant, GrantBody, MachineConfig, MachineState, MachineVerifier};
use opkey_protocol::ble::{RevocationBody, RevocationList};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::sync::OnceLock;

/// The machine id the fuzz machine is provisioned with.
pub const MACHINE_ID: &str = "mch_fuzzfuzzfuzzfuzz";

fn new_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .expect("P-256 key generation")
        .as_ref()
        .to_vec()
}

/// The issuer key of this process.
pub struct Keys {
    issuer: EcdsaKeyPair,
    machine_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The process's keys, made on first use.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        let issuer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &new_pkcs8(), &rng)
            .expect("fresh key parses");
        Keys {
            issuer,
            machine_pkcs8: new_pkcs8(),
        }
    })
}

impl Keys {
    /// The issuer's public key, SEC1 uncompressed.
    pub fn issuer_public_key(&self) -> &[u8] {
        self.issuer.public_key().as_ref()
    }

    /// `body` signed by the issuer (`None` when the body cannot be encoded).
    pub fn sign_grant(&self, body: GrantBody) -> Option<Grant> {
        Grant::sign(body, &self.issuer, &SystemRandom::new()).ok()
    }

    /// `body` signed by the issuer (`None` when the body cannot be encoded).
    pub fn sign_revocations(&self, body: RevocationBody) -> Option<RevocationList> {
        RevocationList::sign(body, &self.issuer, &SystemRandom::new()).ok()
    }

    /// A machine ([`MACHINE_ID`]) that trusts the issuer, with fresh state.
    pub fn machine(&self) -> MachineVerifier {
        let config = MachineConfig::new(
            MACHINE_ID,
            self.machine_pkcs8.clone().into(),
            self.issuer_public_key().to_vec(),
        );
        MachineVerifier::new(config, MachineState::default(), &SystemRandom::new())
            .expect("the fuzz machine starts")
    }
}
