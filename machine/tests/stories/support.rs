//! An issuer, one machine, one enrolled phone and its grant, and the phone's half of an
//! exchange driven through a `Connection`.

use opkey_machine::{Connection, Machine, MachineError, MachineEvent, MemoryStore, StateStore};
use opkey_protocol::api::{KeypadTable, MachineProvisioning};
use opkey_protocol::ble::test_support::{Issuer, PhoneKey, TestMachine, grant_body};
use opkey_protocol::ble::{
    Command, Credential, Grant, PhoneUnlock, PhoneUnlockParams, Reassembler, UnlockError, UnlockOutcome,
    fragment,
};
use opkey_protocol::encoding::b64;
use ring::rand::SystemRandom;
use std::path::Path;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub const T0: u64 = 1_760_000_000;
pub const DAY: u64 = 86_400;
pub const MACHINE: &str = "mch_aaaaaaaaaaaaaaaa";
pub const KEY: &str = "key_aaaaaaaaaaaaaaaa";
pub const OPERATOR: &str = "opr_aaaaaaaaaaaaaaaa";

pub fn at(unix: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix as i64).unwrap()
}

/// Glues TX notifications back into one message, as the phone's reassembler would.
pub fn reassemble(fragments: &[Vec<u8>]) -> Vec<u8> {
    let mut receiver = Reassembler::new();
    let mut message = None;
    for f in fragments {
        assert!(
            message.is_none(),
            "the message completed before its last fragment"
        );
        message = receiver.push(f).unwrap();
    }
    message.expect("the last fragment completes the message")
}

pub struct Site {
    pub issuer: Issuer,
    pub machine: TestMachine,
    pub phone: PhoneKey,
    pub grant: Grant,
    pub store: MemoryStore,
    pub relock_after_s: u16,
    pub revocations: Option<Vec<u8>>,
    pub keypad: Option<KeypadTable>,
}

/// One exchange, as both ends saw it.
#[derive(Debug)]
pub struct Attempt {
    pub phone: Result<UnlockOutcome, UnlockError>,
    pub events: Vec<MachineEvent>,
    /// The RX writes the phone made, for replays.
    pub request: Vec<Vec<u8>>,
}

impl Site {
    pub fn new() -> Self {
        let issuer = Issuer::new();
        let phone = PhoneKey::new();
        let grant = issuer.grant(grant_body(KEY, &phone, &[MACHINE], T0 - 3600, T0 + 7 * DAY));
        Self {
            issuer,
            machine: TestMachine::new(MACHINE),
            phone,
            grant,
            store: MemoryStore::new(),
            relock_after_s: 120,
            revocations: None,
            keypad: None,
        }
    }

    pub fn provisioning(&self) -> MachineProvisioning {
        MachineProvisioning {
            machine_id: MACHINE.into(),
            name: "Excavator 7".into(),
            issuer_public_key: b64(self.issuer.public_key()),
            machine_public_key: b64(self.machine.public_key()),
            challenge_lifetime_s: 10,
            relock_after_s: self.relock_after_s,
            revocations: self.revocations.as_deref().map(b64),
            server_url: None,
            keypad: self.keypad.clone(),
        }
    }

    pub fn machine_key(&self) -> Zeroizing<Vec<u8>> {
        self.machine.config(&self.issuer).machine_key_pkcs8
    }

    pub fn write_machine_key(&self, path: &Path) {
        std::fs::write(path, &*self.machine_key()).unwrap();
    }

    /// Starts (or restarts) the machine on the site's in-memory store.
    pub fn start(&self) -> Machine {
        self.start_on(Box::new(self.store.clone())).unwrap()
    }

    pub fn start_on(&self, store: Box<dyn StateStore>) -> Result<Machine, MachineError> {
        Machine::new(&self.provisioning(), self.machine_key(), store)
    }

    pub fn params(&self, command: Command, credential: Credential) -> PhoneUnlockParams {
        PhoneUnlockParams {
            machine_id: MACHINE.into(),
            machine_public_key: self.machine.public_key().to_vec(),
            command,
            credential,
            revocations: None,
        }
    }

    pub fn full(&self) -> Credential {
        Credential::Full {
            grant_bytes: self.grant.as_bytes().to_vec(),
        }
    }

    pub fn cached(&self) -> Credential {
        Credential::Cached { key_id: KEY.into() }
    }

    /// Connect at `mtu`, subscribe, send one request, disconnect.
    pub fn attempt(
        &self,
        machine: &mut Machine,
        params: PhoneUnlockParams,
        mtu: u16,
        now: OffsetDateTime,
    ) -> Attempt {
        let mut link = machine.connect();
        link.set_att_mtu(mtu).unwrap();
        let hello = link.on_subscribe(machine, now).unwrap();
        assert!(hello.events.is_empty());
        let attempt = self.answer(machine, &mut link, &hello.fragments, params, now);
        link.on_disconnect(machine);
        attempt
    }

    pub fn unlock(&self, machine: &mut Machine, credential: Credential, now: OffsetDateTime) -> Attempt {
        self.attempt(machine, self.params(Command::Unlock, credential), 23, now)
    }

    pub fn lock(&self, machine: &mut Machine, now: OffsetDateTime) -> Attempt {
        self.attempt(machine, self.params(Command::Lock, self.cached()), 23, now)
    }

    /// The phone's answer to the Hello in `hello`, written on `link` fragment by fragment.
    pub fn answer(
        &self,
        machine: &mut Machine,
        link: &mut Connection,
        hello: &[Vec<u8>],
        params: PhoneUnlockParams,
        now: OffsetDateTime,
    ) -> Attempt {
        let mtu = usize::from(link.att_mtu());
        assert!(hello.iter().all(|f| f.len() <= mtu - 3));
        let mut phone = PhoneUnlock::new(params, now).unwrap();
        let needed = phone.on_hello(&reassemble(hello), &SystemRandom::new()).unwrap();
        let request = phone.on_signature(self.phone.sign(&needed.transcript)).unwrap();
        let request = fragment(&request, link.att_mtu()).unwrap();
        let (notified, events) = write_all(machine, link, &request, now);
        assert!(notified.iter().all(|f| f.len() <= mtu - 3));
        Attempt {
            phone: phone.on_result(&reassemble(&notified)),
            events,
            request,
        }
    }
}

/// Writes every fragment; only the last may produce a reply.
pub fn write_all(
    machine: &mut Machine,
    link: &mut Connection,
    fragments: &[Vec<u8>],
    now: OffsetDateTime,
) -> (Vec<Vec<u8>>, Vec<MachineEvent>) {
    let (last, first) = fragments.split_last().unwrap();
    for f in first {
        assert_eq!(link.on_write(machine, f, now).unwrap(), Default::default());
    }
    let reply = link.on_write(machine, last, now).unwrap();
    (reply.fragments, reply.events)
}

pub fn unlocked(usage_session: u32, relock_after_s: u16) -> Result<UnlockOutcome, UnlockError> {
    Ok(UnlockOutcome::Unlocked {
        relock_after_s,
        usage_session,
    })
}

/// The `opkey-machine` binary, for the stories that run it as a process.
pub const BIN: &str = env!("CARGO_BIN_EXE_opkey-machine");

/// `opkey-machine keygen --key PATH`, as it ran.
pub fn keygen(path: &Path) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("keygen")
        .arg("--key")
        .arg(path)
        .output()
        .unwrap()
}

/// Runs keygen, which must succeed, and returns the public key it printed.
pub fn keygen_public_key(path: &Path) -> String {
    let out = keygen(path);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `opkey-machine run --provision BUNDLE --key KEY --state STATE` and then `extra`, with
/// stdin and stdout piped; add what else the story needs, then spawn.
pub fn run_command(bundle: &Path, key: &Path, state: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .arg("run")
        .arg("--provision")
        .arg(bundle)
        .arg("--key")
        .arg(key)
        .arg("--state")
        .arg(state)
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    command
}
