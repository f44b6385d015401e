//! Ready-made issuers, machines and phone keys for tests of the unlock protocol, here and
//! in the machine and core crates (feature `test-support`). Software keys only; never for
//! production.

use super::crypto::sign_raw;
use super::grant::{Grant, GrantBody};
use super::machine::{MachineConfig, MachineState, MachineVerifier};
use super::revocation::{Revocation, RevocationBody, RevocationList};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use std::fmt;
use zeroize::Zeroizing;

/// A fresh P-256 key for raw (`r ‖ s`) signatures, and its PKCS#8 form.
fn new_key() -> (EcdsaKeyPair, Zeroizing<Vec<u8>>) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key generation");
    let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).expect("fresh key parses");
    (key, pkcs8)
}

/// The backend's grant-signing key.
pub struct Issuer {
    key: EcdsaKeyPair,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Issuer(..)")
    }
}

impl Default for Issuer {
    fn default() -> Self {
        Self::new()
    }
}

impl Issuer {
    pub fn new() -> Self {
        Self { key: new_key().0 }
    }

    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    pub fn key_pair(&self) -> &EcdsaKeyPair {
        &self.key
    }

    pub fn grant(&self, body: GrantBody) -> Grant {
        Grant::sign(body, &self.key, &SystemRandom::new()).expect("test grant signs")
    }

    pub fn revocations(
        &self,
        machine_id: &str,
        sequence: u32,
        issued_at: u64,
        entries: Vec<Revocation>,
    ) -> RevocationList {
        let body = RevocationBody {
            machine_id: machine_id.into(),
            sequence,
            issued_at,
            entries,
        };
        RevocationList::sign(body, &self.key, &SystemRandom::new()).expect("test list signs")
    }
}

/// A phone's key, as its `Signer` would hold it.
pub struct PhoneKey {
    key: EcdsaKeyPair,
}

impl fmt::Debug for PhoneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneKey(..)")
    }
}

impl Default for PhoneKey {
    fn default() -> Self {
        Self::new()
    }
}

impl PhoneKey {
    pub fn new() -> Self {
        Self { key: new_key().0 }
    }

    pub fn public_key(&self) -> [u8; 65] {
        self.key
            .public_key()
            .as_ref()
            .try_into()
            .expect("P-256 public key is 65 bytes")
    }

    /// The raw `r ‖ s` signature of `transcript`.
    pub fn sign(&self, transcript: &[u8]) -> [u8; 64] {
        sign_raw(&self.key, &SystemRandom::new(), transcript).expect("test signature")
    }
}

/// A machine's identity and long-term key.
pub struct TestMachine {
    pub machine_id: String,
    pkcs8: Zeroizing<Vec<u8>>,
    public_key: Vec<u8>,
}

impl fmt::Debug for TestMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestMachine({})", self.machine_id)
    }
}

impl TestMachine {
    pub fn new(machine_id: &str) -> Self {
        let (key, pkcs8) = new_key();
        Self {
            machine_id: machine_id.into(),
            public_key: key.public_key().as_ref().to_vec(),
            pkcs8,
        }
    }

    /// The key the phone syncs for this machine.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    pub fn config(&self, issuer: &Issuer) -> MachineConfig {
        MachineConfig::new(
            self.machine_id.clone(),
            self.pkcs8.clone(),
            issuer.public_key().to_vec(),
        )
    }

    /// A verifier with fresh state.
    pub fn verifier(&self, issuer: &Issuer) -> MachineVerifier {
        self.verifier_with(issuer, MachineState::default())
    }

    /// A verifier restarted from persisted state.
    pub fn verifier_with(&self, issuer: &Issuer, state: MachineState) -> MachineVerifier {
        MachineVerifier::new(self.config(issuer), state, &SystemRandom::new()).expect("test machine starts")
    }
}

/// A personal grant body for `phone` naming `machines`, valid `[valid_from, valid_to)`,
/// issued at `valid_from`, serial 1, with 20-character ids like the backend's.
pub fn grant_body(
    key_id: &str,
    phone: &PhoneKey,
    machines: &[&str],
    valid_from: u64,
    valid_to: u64,
) -> GrantBody {
    GrantBody {
        key_id: key_id.into(),
        operator_id: "opr_aaaaaaaaaaaaaaaa".into(),
        phone_public_key: phone.public_key(),
        machine_ids: machines.iter().map(|m| (*m).to_owned()).collect(),
        valid_from,
        valid_to,
        issued_at: valid_from,
        personal: true,
        serial: 1,
    }
}
