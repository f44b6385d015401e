//! A site for Digital Key stories: the fake backend with an issuer, one enrolled phone that
//! synced a key and its grant, and the machine it opens, simulated by `opkey-machine` and
//! reached through the core's `InMemoryTransport`.

use super::*;
use fake::OPERATOR;
use opkey_core::{
    BleTransport, CancelToken, InMemoryTransport, MachineTag, OutboxEntry, Signer, SignerError,
    SimulatedPeripheral, SoftwareSigner, UnlockError, UnlockReport,
};
use opkey_machine::{Connection, Machine, MachineEvent, MemoryStore};
use opkey_protocol::api::MachineProvisioning;
use opkey_protocol::ble::machine_tag;
use opkey_protocol::ble::test_support::{Issuer, TestMachine};
use opkey_protocol::encoding::b64;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use time::Duration;

pub const M1: &str = "mch_excavator_000001";
pub const K1: &str = "key_excavator_000001";
pub const DAY: u64 = 86_400;

pub fn t0() -> u64 {
    T0.unix_timestamp() as u64
}

/// The `opkey-machine` unit behind the simulated radio.
pub struct SimMachine {
    pub machine: Arc<Mutex<Machine>>,
    pub events: Arc<Mutex<Vec<MachineEvent>>>,
    link: Option<Connection>,
    tag: MachineTag,
}

impl SimMachine {
    pub fn new(machine: Machine) -> Self {
        let tag = machine_tag(machine.machine_id());
        Self {
            machine: Arc::new(Mutex::new(machine)),
            events: Arc::default(),
            link: None,
            tag,
        }
    }
}

impl SimulatedPeripheral for SimMachine {
    fn machine_tag(&self) -> MachineTag {
        self.tag
    }

    fn on_connect(&mut self, att_mtu: u16) {
        let mut link = self.machine.lock().unwrap().connect();
        link.set_att_mtu(att_mtu).unwrap();
        self.link = Some(link);
    }

    fn on_subscribe(&mut self, now: OffsetDateTime) -> Vec<Vec<u8>> {
        let link = self.link.as_mut().expect("subscribed while connected");
        let reply = link.on_subscribe(&mut self.machine.lock().unwrap(), now).unwrap();
        self.events.lock().unwrap().extend(reply.events);
        reply.fragments
    }

    fn on_write(&mut self, fragment: &[u8], now: OffsetDateTime) -> Vec<Vec<u8>> {
        let link = self.link.as_mut().expect("written while connected");
        let reply = link
            .on_write(&mut self.machine.lock().unwrap(), fragment, now)
            .unwrap();
        self.events.lock().unwrap().extend(reply.events);
        reply.fragments
    }

    fn on_disconnect(&mut self) {
        if let Some(link) = self.link.take() {
            link.on_disconnect(&mut self.machine.lock().unwrap());
        }
    }
}

/// The phone key, counting what it signs.
#[derive(Debug)]
pub struct CountingSigner {
    inner: SoftwareSigner,
    pub signed: AtomicU32,
}

impl Signer for CountingSigner {
    fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        self.inner.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.signed.fetch_add(1, Ordering::SeqCst);
        self.inner.sign(message)
    }
}

pub fn provisioning(
    machine: &TestMachine,
    issuer: &Issuer,
    revocations: Option<&[u8]>,
) -> MachineProvisioning {
    MachineProvisioning {
        machine_id: machine.machine_id.clone(),
        name: "Excavator".into(),
        issuer_public_key: b64(issuer.public_key()),
        machine_public_key: b64(machine.public_key()),
        challenge_lifetime_s: 10,
        relock_after_s: 120,
        revocations: revocations.map(b64),
        server_url: None,
        keypad: None,
    }
}

/// A machine unit for `test_machine`, trusting `issuer`, on a fresh in-memory state.
pub fn start_machine(test_machine: &TestMachine, issuer: &Issuer, revocations: Option<&[u8]>) -> Machine {
    Machine::new(
        &provisioning(test_machine, issuer, revocations),
        test_machine.config(issuer).machine_key_pkcs8,
        Box::new(MemoryStore::new()),
    )
    .unwrap()
}

pub struct Site {
    pub fake: Fake,
    pub phone: Phone,
    pub signer: Arc<CountingSigner>,
    pub op: OpKey,
    pub issuer: Arc<Issuer>,
    pub test_machine: TestMachine,
    pub machine: Arc<Mutex<Machine>>,
    pub machine_events: Arc<Mutex<Vec<MachineEvent>>>,
    pub transport: Arc<InMemoryTransport>,
    pub peripheral_id: String,
}

impl Site {
    /// Ann's phone holds K1 on M1 (active, with a grant valid from an hour ago for 7
    /// days), synced; M1 is in range.
    pub async fn new() -> Site {
        Self::with_machine_revocations(None).await
    }

    pub async fn with_machine_revocations(list: Option<&[u8]>) -> Site {
        let clock = manual(T0);
        let fake = Fake::start(clock.clone()).await;
        let phone = Phone::new(clock.clone());
        let signer = Arc::new(CountingSigner {
            inner: SoftwareSigner::generate().unwrap().0,
            signed: AtomicU32::new(0),
        });
        let op = Self::open(&phone, &signer);
        let (link, _) = fake.invite(OPERATOR);
        op.redeem_invite(&link).await.unwrap();

        let test_machine = TestMachine::new(M1);
        fake.add_machine(M1, "Excavator");
        fake.set_machine_key(M1, test_machine.public_key());
        fake.put_key(
            K1,
            OPERATOR,
            &[M1],
            T0 - Duration::days(1),
            T0 + Duration::days(30),
        );
        fake.issue_grant(K1, OPERATOR, &[M1], t0() - 3600, t0() + 7 * DAY, 1);
        op.sync().await.unwrap();

        let issuer = fake.issuer();
        let sim = SimMachine::new(start_machine(&test_machine, &issuer, list));
        let (machine, machine_events) = (sim.machine.clone(), sim.events.clone());
        let transport = Arc::new(InMemoryTransport::new(clock));
        let peripheral_id = transport.add_peripheral(Box::new(sim));
        Site {
            fake,
            phone,
            signer,
            op,
            issuer,
            test_machine,
            machine,
            machine_events,
            transport,
            peripheral_id,
        }
    }

    /// Opens the phone's core with short radio timeouts.
    pub fn open(phone: &Phone, signer: &Arc<CountingSigner>) -> OpKey {
        let mut config = phone.config();
        config.unlock.scan_timeout = StdDuration::from_millis(200);
        config.unlock.connect_timeout = StdDuration::from_millis(500);
        config.unlock.answer_timeout = StdDuration::from_millis(500);
        config.unlock.connect_retry_delay = StdDuration::from_millis(5);
        OpKey::open(
            config,
            phone.secrets.clone() as Arc<dyn SecretStore>,
            Some(signer.clone() as Arc<dyn Signer>),
            phone.clock.clone(),
        )
        .unwrap()
    }

    pub fn radio(&self) -> Arc<dyn BleTransport> {
        self.transport.clone()
    }

    pub async fn unlock(&self) -> Result<UnlockReport, UnlockError> {
        self.op.unlock(M1, self.radio(), &CancelToken::new()).await
    }

    pub async fn lock(&self) -> Result<UnlockReport, UnlockError> {
        self.op.lock(M1, self.radio(), &CancelToken::new()).await
    }

    pub fn relay_on(&self) -> bool {
        self.machine.lock().unwrap().relay().is_on()
    }

    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.op.usage_events().unwrap()
    }

    pub fn signatures(&self) -> u32 {
        self.signer.signed.load(Ordering::SeqCst)
    }

    /// Every connection the driver opened, it closed.
    pub fn assert_links_closed(&self) {
        let stats = self.transport.stats();
        assert_eq!(stats.open_connections, 0, "{stats:?}");
        assert_eq!(stats.disconnect_calls, stats.connections, "{stats:?}");
    }
}

use std::time::Duration as StdDuration;
