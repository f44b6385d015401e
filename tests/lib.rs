//! # opkey-e2e
//!
//! The harness for end-to-end scenarios: a real backend ([`Backend`]) on loopback with its
//! own SQLite file, admin calls over HTTP through the same client the CLI uses, and phones
//! ([`Phone`]) running the real core over HTTP, and machines ([`MachineUnit`]): the real
//! `opkey-machine` unit, registered with the backend and started from its provisioning
//! bundle, serving the local socket transport on loopback. Scenarios live in `tests/`;
//! each reads as a story of the product.

pub mod fakes;
pub mod fault_proxy;

use opkey_core::{BleTransport, CoreConfig, MemorySecretStore, OpKey, RetryPolicy, SocketTransport};
use opkey_machine::socket::{EventSink, ServeOptions};
use opkey_machine::{MachineEvent, MemoryStore};
use opkey_protocol::api::{CreateKey, CreateMachine, CreateOperator, EditMachine, OperatorView, SmsMessage};
use opkey_protocol::{AccessType, Clock, Key, Keypad, Machine, SystemClock, TelematicsUnit};
use opkey_server::admin_client::AdminClient;
use opkey_server::{RunningServer, ServerConfig};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use url::Url;

pub const ADMIN_TOKEN: &str = "e2e-bootstrap-admin-token";

/// A running backend with its database in a temporary folder.
#[derive(Debug)]
pub struct Backend {
    pub server: RunningServer,
    pub admin: AdminClient,
    pub clock: Arc<dyn Clock>,
    pub dir: TempDir,
}

impl Backend {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::start_with(move |c| c.clock = clock).await
    }

    /// Starts a backend after `adjust` has changed its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = ServerConfig::new(dir.path().join("backend.db"), ADMIN_TOKEN.to_owned());
        adjust(&mut config);
        let clock = config.clock.clone();
        let server = opkey_server::start(config, ([127, 0, 0, 1], 0).into())
            .await
            .expect("backend starts");
        let admin = AdminClient::new(server.url(), ADMIN_TOKEN);
        Self {
            server,
            admin,
            clock,
            dir,
        }
    }

    pub fn url(&self) -> &Url {
        self.server.url()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("backend.db")
    }

    pub async fn machine(&self, name: &str) -> Machine {
        self.admin
            .create_machine(&CreateMachine {
                name: name.to_owned(),
                serial: format!("SN-{name}"),
                unit_type: Some(TelematicsUnit::Tu600),
                keypad: Some(Keypad::DualId),
                ble_public_key: None,
            })
            .await
            .expect("machine created")
    }

    /// A machine whose unit made its key, registered it with `PATCH /machines/{id}`,
    /// fetched its provisioning bundle and now serves the local socket on loopback.
    pub async fn registered_machine(&self, name: &str) -> MachineUnit {
        let record = self.machine(name).await;
        let dir = tempfile::tempdir().expect("temporary folder");
        let key_file = dir.path().join("machine.key");
        let public_key = opkey_machine::generate_key_file(&key_file, &ring::rand::SystemRandom::new())
            .expect("machine key made");
        self.admin
            .edit_machine(
                &record.id,
                &EditMachine {
                    ble_public_key: Some(public_key),
                    ..EditMachine::default()
                },
            )
            .await
            .expect("machine key registered");
        let bundle = self
            .admin
            .machine_provisioning(&record.id)
            .await
            .expect("provisioning bundle");
        let unit = opkey_machine::Machine::new(
            &bundle,
            opkey_machine::read_key_file(&key_file).expect("key file"),
            Box::new(MemoryStore::new()),
        )
        .expect("machine starts from its bundle");
        MachineUnit::serve(record, unit, dir).await
    }

    /// Creates an operator with an SMS invitation and returns them with the SMS.
    pub async fn invited_operator(&self, name: &str, phone: &str) -> (OperatorView, Invitation) {
        let op = self
            .admin
            .create_operator(&CreateOperator {
                name: name.to_owned(),
                phone: phone.to_owned(),
                access_type: None,
                send_invite: true,
            })
            .await
            .expect("operator created");
        let sms = self.latest_sms_to(phone).await;
        (op, Invitation::from_sms(&sms))
    }

    pub async fn latest_sms_to(&self, phone: &str) -> SmsMessage {
        let phone = opkey_protocol::PhoneNumber::parse(phone).expect("valid phone");
        self.admin
            .sms_outbox()
            .await
            .expect("outbox readable")
            .into_iter()
            .rev()
            .find(|m| m.recipient == phone)
            .expect("an SMS was sent to the operator")
    }

    /// A personal key for `operator` on `machine`, active from an hour ago for `days`.
    pub async fn personal_key(
        &self,
        operator: &str,
        machine: &str,
        access_type: AccessType,
        days: i64,
    ) -> Key {
        let now = self.clock.now();
        let mut request = personal_key_request(
            operator,
            machine,
            access_type,
            now - Duration::hours(1),
            now + Duration::days(days),
            "",
        );
        request.card_id = access_type
            .is_card()
            .then(|| format!("card-{}", now.unix_timestamp_nanos()));
        self.admin.create_key(&request).await.expect("key created")
    }
}

/// The admin's request for a personal key of `operator` on `machine`, valid from
/// `valid_from` to `valid_to`, with no card id, static PIN or PIN settings of its own.
pub fn personal_key_request(
    operator: &str,
    machine: &str,
    access_type: AccessType,
    valid_from: OffsetDateTime,
    valid_to: OffsetDateTime,
    description: impl Into<String>,
) -> CreateKey {
    CreateKey {
        operator_id: Some(operator.to_owned()),
        machine_ids: vec![machine.to_owned()],
        access_type,
        valid_from,
        valid_to,
        description: description.into(),
        card_id: None,
        static_pin: None,
        pin_algorithm: None,
        pin_digits: None,
        pin_period_s: None,
    }
}

/// A machine's telematics unit, as `opkey-machine run` runs it: the real unit behind
/// `opkey_machine::socket::serve` on a loopback listener. Stops when dropped.
#[derive(Debug)]
pub struct MachineUnit {
    /// The machine as the backend knows it.
    pub record: Machine,
    pub address: String,
    unit: Arc<Mutex<opkey_machine::Machine>>,
    events: Arc<Mutex<Vec<MachineEvent>>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: TempDir,
}

impl MachineUnit {
    async fn serve(record: Machine, unit: opkey_machine::Machine, dir: TempDir) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback listener");
        let address = listener.local_addr().expect("bound").to_string();
        let unit = Arc::new(Mutex::new(unit));
        let events: Arc<Mutex<Vec<MachineEvent>>> = Arc::default();
        let sink: EventSink = {
            let events = events.clone();
            Arc::new(move |e: &MachineEvent| {
                events
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(e.clone())
            })
        };
        let task = tokio::spawn(opkey_machine::socket::serve(
            listener,
            unit.clone(),
            ServeOptions::new(Arc::new(SystemClock)),
            sink,
        ));
        Self {
            record,
            address,
            unit,
            events,
            task,
            _dir: dir,
        }
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// A phone's radio that reaches this machine (and nothing else).
    pub fn radio(&self) -> Arc<dyn BleTransport> {
        Arc::new(SocketTransport::new(vec![self.address.clone()]))
    }

    /// The unit itself: relay, engine, usage log, persisted state.
    pub fn unit(&self) -> MutexGuard<'_, opkey_machine::Machine> {
        self.unit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every status event so far (what `opkey-machine run` prints).
    pub fn events(&self) -> Vec<MachineEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for MachineUnit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The invite an SMS carried: its link and its short code.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub link: String,
    pub code: String,
}

impl Invitation {
    pub fn from_sms(sms: &SmsMessage) -> Self {
        Self::from_text(&sms.body)
    }

    /// Reads the link and the code out of an SMS text.
    pub fn from_text(text: &str) -> Self {
        let words: Vec<&str> = text
            .split_whitespace()
            .map(|w| w.trim_end_matches(['.', ',']))
            .collect();
        let link = words
            .iter()
            .find(|w| w.contains("/i/"))
            .expect("SMS has a link")
            .to_string();
        let code = words
            .iter()
            .find(|w| w.len() == 13 && w.chars().filter(|&c| c == '-').count() == 2)
            .expect("SMS has a short code")
            .to_string();
        Self { link, code }
    }

    /// The token at the end of the link.
    pub fn token(&self) -> &str {
        self.link.rsplit('/').next().unwrap_or_default()
    }
}

/// A phone: the real core on its own folder, with an in-memory platform secret store.
#[derive(Debug)]
pub struct Phone {
    pub core: OpKey,
    pub dir: TempDir,
    pub secrets: Arc<MemorySecretStore>,
    pub clock: Arc<dyn Clock>,
    server_url: Option<Url>,
    /// The core's own timeouts and retries (as the apps ship) instead of the tests' short ones.
    app_timeouts: bool,
}

impl Phone {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let secrets = Arc::new(MemorySecretStore::default());
        let core = open_core(dir.path().into(), secrets.clone(), clock.clone(), None, false);
        Self {
            core,
            dir,
            secrets,
            clock,
            server_url: None,
            app_timeouts: false,
        }
    }

    /// A phone with the core's default request timeout and retry policy, as the apps ship
    /// (the tests' phones give up after 1 s): for benchmarks of large fleets, whose first
    /// sync pages take longer.
    pub fn with_app_timeouts() -> Self {
        let mut phone = Self::new();
        phone.app_timeouts = true;
        phone.core = open_core(
            phone.dir.path().into(),
            phone.secrets.clone(),
            phone.clock.clone(),
            None,
            true,
        );
        phone
    }

    /// A phone whose backend is fixed (as in the mobile apps), e.g. a fault proxy.
    pub fn for_server(url: &Url) -> Self {
        let mut phone = Self::new();
        phone.server_url = Some(url.clone());
        phone.core = open_core(
            phone.dir.path().into(),
            phone.secrets.clone(),
            phone.clock.clone(),
            phone.server_url.clone(),
            false,
        );
        phone
    }

    /// Closes and opens the core again on the same folder and secrets: an app restart.
    pub fn restart(self) -> Self {
        let Phone {
            core,
            dir,
            secrets,
            clock,
            server_url,
            app_timeouts,
        } = self;
        drop(core);
        let core = open_core(
            dir.path().into(),
            secrets.clone(),
            clock.clone(),
            server_url.clone(),
            app_timeouts,
        );
        Phone {
            core,
            dir,
            secrets,
            clock,
            server_url,
            app_timeouts,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("opkey.db")
    }
}

impl Default for Phone {
    fn default() -> Self {
        Self::new()
    }
}

fn open_core(
    dir: PathBuf,
    secrets: Arc<MemorySecretStore>,
    clock: Arc<dyn Clock>,
    server: Option<Url>,
    app_timeouts: bool,
) -> OpKey {
    let mut config = CoreConfig::new(dir);
    config.allow_loopback_invites = true;
    config.device_name = "e2e phone".to_owned();
    config.server_url = server;
    if app_timeouts {
        return OpKey::open(config, secrets, None, clock).expect("core opens");
    }
    config.retry = RetryPolicy {
        attempts: 3,
        first_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(40),
    };
    config.request_timeout = std::time::Duration::from_secs(1);
    // Machines are on loopback: one that does not answer at once is not there.
    config.unlock.scan_timeout = std::time::Duration::from_secs(2);
    config.unlock.connect_timeout = std::time::Duration::from_secs(2);
    config.unlock.answer_timeout = std::time::Duration::from_secs(2);
    OpKey::open(config, secrets, None, clock).expect("core opens")
}

/// Every byte of the files in `dir` (database, WAL, anything else), for plaintext scans.
pub fn all_bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(all_bytes_under(&path));
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.extend(bytes);
            }
        }
    }
    out
}

/// True when `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Now, truncated to whole seconds (the wire carries RFC 3339 seconds).
pub fn now_seconds(clock: &dyn Clock) -> OffsetDateTime {
    let now = clock.now();
    now.replace_nanosecond(0).unwrap_or(now)
}
