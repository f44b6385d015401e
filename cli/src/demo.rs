//! `opkey demo`: the whole story in one process on embedded defaults — a backend on
//! loopback with a temporary SQLite file and the dev SMS outbox, an admin, and a phone
//! (the real core) — told as a short, readable story. The three machines are simulated
//! telematics units (`opkey-machine`, in memory) that the phones reach over the core's
//! in-memory radio: unlocks, a usage session, a revocation that an offline machine learns
//! from another operator's phone, and at a second site where phones stay in the cabin a
//! Rolling PIN read offline and typed on the keypad (a replay and wrong guesses refused,
//! then a lockout). Everything it shows goes through
//! the same admin client and phone core as the rest of the CLI.
//!
//! With `--audit-secrets` the same story runs with every log line captured in memory at
//! trace level, the invitations sent through a loopback SMS provider (the dev outbox keeps
//! them in the database by design), and ends with the secrets audit (`crate::audit`) of
//! the logs, the story output and every file the demo wrote.

use crate::audit::{self, AuditError, Capture, SecretKind, Secrets};
use crate::error::CliError;
use crate::output::{table_lines, when};
use crate::phone::key_rows;
use crate::simulated::SimulatedUnit;
use crate::unlock::exchange_summary;
use opkey_core::{
    CancelToken, CoreConfig, FileSecretStore, InMemoryTransport, KeyView, LinkConditions, OpKey,
    UnlockOutcome, UnlockReport,
};
use opkey_core::{SecretStore, Signer, SoftwareSigner};
use opkey_machine::{
    KeypadOutcome, KeypadRefusal, KeypadReply, Machine, MemoryStore, SessionEnd, TableUpdate,
};
use opkey_protocol::api::SmsMessage;
use opkey_protocol::api::{AdminRole, CreateAdminUser, CreateKey, CreateMachine, CreateOperator, EditKey};
use opkey_protocol::{AccessType, Clock, Keypad, SystemClock, TelematicsUnit};
use opkey_server::admin_client::AdminClient;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use time::Duration;

struct Story {
    step: u32,
    /// With `--audit-secrets`: a copy of everything printed, for the audit.
    captured: Option<Capture>,
}

impl Story {
    fn say(&mut self, who: &str, what: impl AsRef<str>) {
        self.step += 1;
        self.line(format!("{:>2}. {who:<8} {}", self.step, what.as_ref()));
    }

    fn detail(&self, what: impl AsRef<str>) {
        for line in what.as_ref().lines() {
            self.line(format!("             {line}"));
        }
    }

    /// Prints one line (and keeps a copy when audited).
    fn line(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        println!("{text}");
        if let Some(captured) = &self.captured {
            captured.append(text.as_bytes());
            captured.append(b"\n");
        }
    }
}

/// `opkey demo`; with `audit_secrets`, `opkey demo --audit-secrets`.
pub async fn run(audit_secrets: bool) -> Result<(), CliError> {
    let logs = if audit_secrets {
        let logs = Capture::default();
        logs.install_as_log()?;
        Some(logs)
    } else {
        None
    };
    let workdir = tempfile::tempdir()?;
    let clock = SystemClock;
    let now = clock.now().replace_nanosecond(0).unwrap_or(clock.now());
    let mut story = Story {
        step: 0,
        captured: audit_secrets.then(Capture::default),
    };
    story.line("OpKey demo: from an admin's first click to unlocking machines with no signal\n");

    let admin_token = random_token()?;
    let mut config = opkey_server::ServerConfig::new(workdir.path().join("backend.db"), admin_token.clone());
    let issuer_key_file = config.issuer_key_file();
    let sms = if audit_secrets {
        let provider = SmsProvider::start().await?;
        config.sms = opkey_server::SmsConfig::Http(opkey_server::HttpSmsConfig::new(provider.url.clone()));
        SmsSource::Provider(provider)
    } else {
        SmsSource::Outbox
    };
    let server = opkey_server::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| CliError::Io(format!("the embedded backend did not start: {e}")))?;
    story.say(
        "Backend",
        format!(
            "listening on {} (temporary SQLite, {})",
            server.url(),
            sms.describe()
        ),
    );

    let root = AdminClient::new(server.url(), &admin_token);
    let org = root.create_organization("Nordic Plant Hire").await?;
    let fleet_admin = root
        .clone()
        .in_organization(Some(org.id.clone()))
        .create_user(&CreateAdminUser {
            name: "Dana Berg".into(),
            role: AdminRole::FleetAdmin,
            organization_id: None,
        })
        .await?;
    let admin = root.with_token(&fleet_admin.token);
    story.say(
        "Admin",
        format!(
            "created organization \"{}\" and fleet admin {}",
            org.name, fleet_admin.name
        ),
    );

    let units_dir = workdir.path().join("units");
    std::fs::create_dir_all(&units_dir)?;
    let excavator = machine(
        &admin,
        &units_dir,
        "Excavator EX-210",
        "EX210-0042",
        TelematicsUnit::Tu700,
        Keypad::K300,
    )
    .await?;
    let telehandler = machine(
        &admin,
        &units_dir,
        "Telehandler TH-14",
        "TH14-1187",
        TelematicsUnit::Tu600,
        Keypad::DualId,
    )
    .await?;
    let lift = machine(
        &admin,
        &units_dir,
        "Scissor lift SL-8",
        "SL8-0311",
        TelematicsUnit::Tu600,
        Keypad::DualId,
    )
    .await?;
    story.say(
        "Admin",
        "registered three machines with their telematics units' public keys:",
    );
    story.detail(format!(
        "{} (TU700, K300 keypad), {} (TU600, DualID), {} (TU600, DualID)",
        excavator.record.name, telehandler.record.name, lift.record.name
    ));
    story.detail(
        "each unit made its P-256 key and was started from its provisioning bundle (simulated units,\n\
         reached over an in-memory radio: 30 ms connection interval, ATT MTU 185)",
    );
    let (excavator_unit, telehandler_unit) = (excavator.unit.clone(), telehandler.unit.clone());
    let (excavator, telehandler, lift) = (excavator.record, telehandler.record, lift.record);

    let operator = admin
        .create_operator(&CreateOperator {
            name: "Ola Nordmann".into(),
            phone: "+47 412 34 567".into(),
            access_type: Some(AccessType::DigitalKey),
            send_invite: true,
        })
        .await?;
    let op_id = operator.operator.id.clone();
    story.say(
        "Admin",
        format!(
            "created operator {} ({}) with an SMS invitation",
            operator.operator.name, op_id
        ),
    );

    let key =
        |access_type, machine: &str, from: Duration, to: Duration, description: &str, card: Option<&str>| {
            CreateKey {
                operator_id: Some(op_id.clone()),
                machine_ids: vec![machine.to_owned()],
                access_type,
                valid_from: now + from,
                valid_to: now + to,
                description: description.to_owned(),
                card_id: card.map(str::to_owned),
                static_pin: None,
                pin_algorithm: None,
                pin_digits: None,
                pin_period_s: None,
            }
        };
    let day = Duration::days(1);
    let dig = admin
        .create_key(&key(
            AccessType::DigitalKey,
            &excavator.id,
            -Duration::hours(1),
            day * 30,
            "Day shift, site North",
            None,
        ))
        .await?;
    let quarry_pin = admin
        .create_key(&key(
            AccessType::RollingPin,
            &telehandler.id,
            -Duration::hours(1),
            day * 14,
            "Quarry: phones stay in the cabin",
            None,
        ))
        .await?;
    let card = admin
        .create_key(&key(
            AccessType::KeyCard,
            &lift.id,
            Duration::ZERO,
            day * 90,
            "Badge 0417",
            Some("04:A2:19:7C:3B:80"),
        ))
        .await?;
    admin
        .create_key(&key(
            AccessType::DigitalKey,
            &lift.id,
            day * 2,
            day * 9,
            "Next week's job",
            None,
        ))
        .await?;
    let tele_dig = admin
        .create_key(&key(
            AccessType::DigitalKey,
            &telehandler.id,
            -Duration::hours(1),
            day * 5,
            "Telehandler, this week",
            None,
        ))
        .await?;
    admin
        .create_key(&key(
            AccessType::IpafCard,
            &lift.id,
            -day * 40,
            -day,
            "Last month's hire",
            Some("IPAF-3-7719024"),
        ))
        .await?;
    story.say(
        "Admin",
        "gave Ola six keys: two Digital Keys, Rolling PIN, Key Card, an upcoming and an ended one",
    );

    let messages = sms.messages(&admin).await?;
    let message = messages
        .iter()
        .rev()
        .find(|m| m.recipient == operator.operator.phone)
        .ok_or_else(|| CliError::Io("the SMS outbox holds no invitation for the operator".into()))?;
    story.say("SMS", format!("to {}:", message.recipient.masked()));
    story.detail(format!("\"{}\"", redacted_invitation(&message.body)));
    let link = message
        .body
        .split_whitespace()
        .find(|w| w.contains("/i/"))
        .map(|w| w.trim_end_matches(['.', ',']))
        .ok_or_else(|| CliError::Io("the invitation SMS carries no link".into()))?;

    browser_opens_the_link(&mut story, link).await?;

    let phone_dir = workdir.path().join("phone");
    let mut phone_config = CoreConfig::new(&phone_dir);
    phone_config.allow_loopback_invites = true;
    phone_config.device_name = "Ola's phone (demo)".into();
    let phone = OpKey::open(
        phone_config,
        Arc::new(FileSecretStore::new(phone_dir.join("secrets"))),
        None,
        Arc::new(clock),
    )?;
    let enrollment = phone.redeem_invite(link).await?;
    story.say(
        "Phone",
        format!(
            "opened the link: enrolled as {} with {} (phone key: P-256, private part encrypted at rest)",
            enrollment.operator.name,
            enrollment
                .organizations
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    let report = phone.sync().await?;
    story.say(
        "Phone",
        format!(
            "synced {} key(s); they are now on the phone, usable offline:",
            report.upserted
        ),
    );
    let before = phone.keys()?;
    print_indented(&story, &before);
    story.say("App", format!("home screen: \"{}\"", phone.home_guide()?.message));

    let ola_radio = radio(&clock, &[&excavator_unit, &telehandler_unit]);
    at_the_excavator(&mut story, &phone, &ola_radio, &excavator, &excavator_unit).await?;
    let kari = revocation_reaches_the_machine(
        &mut story,
        RevocationScene {
            admin: &admin,
            ola: &phone,
            ola_radio: &ola_radio,
            telehandler: &telehandler,
            unit: &telehandler_unit,
            sms: &sms,
            revoked_key: &tele_dig.id,
            dir: workdir.path(),
            clock: &clock,
            now,
        },
    )
    .await?;

    let before = phone.keys()?;
    let ends = now + day * 7;
    admin
        .edit_key(
            &dig.id,
            &EditKey {
                valid_to: Some(ends),
                description: Some("Day shift, site North (hire shortened)".into()),
            },
        )
        .await?;
    admin.delete_key(&card.id).await?;
    story.say(
        "Admin",
        format!(
            "shortened the Digital Key to end {} and deleted the Key Card",
            when(ends)
        ),
    );

    let report = phone.sync().await?;
    let after = phone.keys()?;
    story.say(
        "Phone",
        format!(
            "synced again: {} changed, {} removed",
            report.upserted, report.deleted
        ),
    );
    story.detail(describe_changes(&before, &after));
    print_indented(&story, &after);

    kari.sync().await?;
    let events = admin.events(None, None).await?;
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &events {
        *outcomes.entry(e.event.outcome.as_str()).or_default() += 1;
    }
    story.say(
        "Admin",
        format!(
            "sees {} usage events the phones uploaded when they synced: {}",
            events.len(),
            outcomes
                .iter()
                .map(|(outcome, n)| format!("{n} {outcome}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    let quarry = QuarryScene {
        story: &mut story,
        phone: &phone,
        operator: &operator.operator,
        telehandler: &telehandler,
        unit: &telehandler_unit,
        key_id: &quarry_pin.id,
    };
    quarry.fetch_keypad_table(&admin).await?;

    let mut secrets = Secrets::default();
    let mut backend_up_files = Vec::new();
    if audit_secrets {
        let online = OnlineSecrets {
            admin: &admin,
            admin_tokens: [&admin_token, &fleet_admin.token],
            sms: &sms,
            phones: [(&phone, &phone_dir), (&kari, &workdir.path().join("phone-2"))],
            server_url: server.url(),
            machines: [&excavator.id, &telehandler.id, &lift.id],
            now,
        };
        online.collect(&mut secrets).await?;
        // The files as they are with the backend up (its WAL included), scanned at the end.
        for mut file in audit::files_under(workdir.path())? {
            file.name = format!("{} (backend up)", file.name);
            backend_up_files.push(file);
        }
        story.say(
            "Audit",
            "collected the secrets the backend, the phones and the machines use (none is shown)",
        );
    }

    server.shutdown().await;
    story.say("Backend", "stopped: from here on there is no network at all");

    let status = phone.status()?;
    story.say(
        "Phone",
        format!(
            "still holds {} key(s) offline, {} usable now (last sync {}, server clock offset {} ms)",
            status.key_count,
            status.usable_key_count,
            status.last_sync_at.map(when).unwrap_or_else(|| "never".into()),
            status.server_offset_ms.unwrap_or(0),
        ),
    );
    if let Err(e) = phone.sync().await {
        story.say("Phone", format!("a sync attempt fails politely: {e}"));
    }
    let report = phone
        .unlock(&excavator.id, ola_radio.clone(), &CancelToken::new())
        .await?;
    story.say(
        "Phone",
        format!(
            "unlocks {} with no network on either side: {}",
            excavator.name,
            outcome_line(&report)
        ),
    );
    story.detail(format!(
        "{}: the edit renewed the grant; the phone carried the excavator's new\n\
         revocation list (the machine now holds list #{}), so the grant of before the edit is refused",
        exchange_summary(&report),
        excavator_unit.machine().state().revocation_sequence
    ));
    let report = phone
        .lock(&excavator.id, ola_radio.clone(), &CancelToken::new())
        .await?;
    story.say("Phone", format!("locks it: {}", outcome_line(&report)));
    QuarryScene {
        story: &mut story,
        phone: &phone,
        operator: &operator.operator,
        telehandler: &telehandler,
        unit: &telehandler_unit,
        key_id: &quarry_pin.id,
    }
    .at_the_keypad()?;
    if let Some(logs) = logs {
        collect_key_files(&mut secrets, &issuer_key_file, &units_dir)?;
        story.line(
            "\nSecrets audit: logs at trace level, story output, every file the demo wrote \
             (with the backend up, and at the end with the phones open)",
        );
        let logs = logs.take();
        let census = audit::log_census(&logs);
        story.line(format!(
            "log lines captured (crate level count): {}",
            census
                .iter()
                .map(|((krate, level), n)| format!("{krate} {level} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let output = story.captured.as_ref().map(Capture::take).unwrap_or_default();
        let mut places = vec![
            audit::Place {
                name: format!("captured logs ({} lines)", lines(&logs)),
                path: None,
                bytes: logs,
            },
            audit::Place {
                name: format!("story output ({} lines)", lines(&output)),
                path: None,
                bytes: output,
            },
        ];
        places.append(&mut backend_up_files);
        places.extend(audit::files_under(workdir.path())?);
        let report = audit::scan(&secrets, &places)?;
        for line in report.lines() {
            println!("{line}");
        }
        let findings = report.findings();
        if !findings.is_empty() {
            return Err(AuditError::SecretsFound { findings }.into());
        }
        println!("\nNo secret found in plaintext.");
        return Ok(());
    }
    story.line("\nDone. The temporary backend and phone files are removed on exit.");
    Ok(())
}

fn lines(text: &[u8]) -> usize {
    text.iter().filter(|b| **b == b'\n').count()
}

/// Where the demo reads the invitations: the backend's dev outbox, or (audited) the
/// loopback SMS provider the backend posted them to.
enum SmsSource {
    Outbox,
    Provider(SmsProvider),
}

impl SmsSource {
    fn describe(&self) -> &'static str {
        match self {
            SmsSource::Outbox => "dev SMS outbox",
            SmsSource::Provider(_) => "SMS through a loopback provider",
        }
    }

    async fn messages(&self, admin: &AdminClient) -> Result<Vec<SmsMessage>, CliError> {
        match self {
            SmsSource::Outbox => Ok(admin.sms_outbox().await?),
            SmsSource::Provider(provider) => Ok(provider
                .inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()),
        }
    }
}

/// A stand-in for an SMS provider on loopback: keeps what the backend's HTTP gateway
/// posts (the default JSON body `{"to": …, "text": …}`) in memory.
struct SmsProvider {
    url: url::Url,
    inbox: Arc<Mutex<Vec<SmsMessage>>>,
}

#[derive(serde::Deserialize)]
struct ProviderRequest {
    to: String,
    text: String,
}

impl SmsProvider {
    async fn start() -> Result<Self, CliError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = url::Url::parse(&format!("http://{}/sms", listener.local_addr()?))
            .map_err(|e| CliError::Io(format!("the SMS provider has no URL: {e}")))?;
        let inbox: Arc<Mutex<Vec<SmsMessage>>> = Arc::default();
        let app = axum::Router::new()
            .route("/sms", axum::routing::post(receive_sms))
            .with_state(inbox.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the loopback SMS provider stopped");
            }
        });
        Ok(Self { url, inbox })
    }
}

async fn receive_sms(
    axum::extract::State(inbox): axum::extract::State<Arc<Mutex<Vec<SmsMessage>>>>,
    axum::Json(request): axum::Json<ProviderRequest>,
) -> axum::http::StatusCode {
    let Ok(recipient) = request.to.parse() else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
    let id = format!("provider-{}", inbox.len() + 1);
    inbox.push(SmsMessage {
        id,
        recipient,
        body: request.text,
        sent_at: SystemClock.now(),
    });
    axum::http::StatusCode::OK
}

/// The invitation as the story shows it: the link's secret and the code masked.
fn redacted_invitation(body: &str) -> String {
    let mut after_code = false;
    body.split(' ')
        .map(|word| {
            let shown = if let Some(at) = word.find("/i/") {
                let rest = &word[at + 3..];
                let tail = rest.len() - rest.trim_end_matches(['.', ',']).len();
                format!("{}/i/•••{}", &word[..at], &rest[rest.len() - tail..])
            } else if after_code {
                word.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { '•' } else { c })
                    .collect()
            } else {
                word.to_owned()
            };
            after_code = word == "code";
            shown
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the audit collects while the backend is up.
struct OnlineSecrets<'a> {
    admin: &'a AdminClient,
    admin_tokens: [&'a str; 2],
    sms: &'a SmsSource,
    /// Each phone and its folder (the secret store is `secrets/` in it).
    phones: [(&'a OpKey, &'a Path); 2],
    server_url: &'a url::Url,
    machines: [&'a str; 3],
    now: time::OffsetDateTime,
}

impl OnlineSecrets<'_> {
    async fn collect(self, secrets: &mut Secrets) -> Result<(), CliError> {
        for token in self.admin_tokens {
            secrets.add_text(SecretKind::AdminToken, token);
        }
        for message in self.sms.messages(self.admin).await? {
            let token = invite_link(&message.body)
                .and_then(|link| link.split("/i/").nth(1).map(str::to_owned))
                .ok_or_else(|| AuditError::collect(SecretKind::InviteToken, "an invitation has no link"))?;
            secrets.add_text(SecretKind::InviteToken, &token);
            let code = message
                .body
                .split(' ')
                .skip_while(|w| *w != "code")
                .nth(1)
                .ok_or_else(|| AuditError::collect(SecretKind::InviteCode, "an invitation has no code"))?;
            secrets.add_code(SecretKind::InviteCode, code);
        }

        let mut signers = Vec::new();
        for (phone, dir) in self.phones {
            let store = FileSecretStore::new(dir.join("secrets"));
            let data_key = store
                .load(opkey_core::secrets::DATA_KEY_NAME)
                .map_err(|e| AuditError::collect(SecretKind::PhoneDataKey, e))?
                .map(zeroize::Zeroizing::new)
                .ok_or_else(|| AuditError::collect(SecretKind::PhoneDataKey, "the secret store is empty"))?;
            let id = secrets.add_bytes(SecretKind::PhoneDataKey, &data_key);
            secrets.exempt(
                dir.join("secrets").join(opkey_core::secrets::DATA_KEY_NAME),
                id,
                "the CLI's file secret store: the phone's data key (a Keystore or Keychain entry in the apps)",
            );
            let pkcs8 = phone_signer_key(&dir.join(opkey_core::store::DB_FILE_NAME), &data_key)?;
            secrets.add_bytes(
                SecretKind::PhoneSignerKey,
                &audit::p256_private_scalar(&pkcs8, SecretKind::PhoneSignerKey)?,
            );
            let phone_id = phone.status()?.phone_id.ok_or_else(|| {
                AuditError::collect(SecretKind::OperatorAccessToken, "a phone is not enrolled")
            })?;
            signers.push((phone_id, pkcs8));
        }
        for (phone_id, pkcs8) in &signers {
            let token = operator_session(self.server_url, phone_id, pkcs8).await?;
            secrets.add_text(SecretKind::OperatorAccessToken, &token);
        }

        // A Static PIN for the second operator, on her phone and the lift's keypad.
        let (kari, _) = self.phones[1];
        let operator = kari
            .status()?
            .operator
            .ok_or_else(|| AuditError::collect(SecretKind::StaticPin, "phone 2 has no operator"))?;
        let pin = random_digits(8)?;
        self.admin
            .create_key(&CreateKey {
                operator_id: Some(operator.id),
                machine_ids: vec![self.machines[2].to_owned()],
                access_type: AccessType::StaticPin,
                valid_from: self.now - Duration::hours(1),
                valid_to: self.now + Duration::days(30),
                description: "Lift, personal PIN".into(),
                card_id: None,
                static_pin: Some(pin.to_string()),
                pin_algorithm: None,
                pin_digits: None,
                pin_period_s: None,
            })
            .await?;
        kari.sync().await?;

        for machine in self.machines {
            let bundle = self.admin.machine_provisioning(machine).await?;
            let Some(table) = bundle.keypad else { continue };
            for entry in &table.rolling_pins {
                let seed = zeroize::Zeroizing::new(
                    opkey_protocol::encoding::unb64(&entry.seed)
                        .ok_or_else(|| AuditError::collect(SecretKind::RollingPinSeed, "not base64url"))?,
                );
                secrets.add_bytes(SecretKind::RollingPinSeed, &seed);
            }
            for entry in &table.static_pins {
                secrets.add_text(SecretKind::StaticPin, &entry.static_pin);
            }
        }
        Ok(())
    }
}

/// The phone core's software signer key, opened from its store with the data key.
fn phone_signer_key(db: &Path, data_key: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, AuditError> {
    let kind = SecretKind::PhoneSignerKey;
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| AuditError::collect(kind, e))?;
    let sealed: Vec<u8> = conn
        .query_row("SELECT sealed FROM vault WHERE slot = 'signer'", [], |row| {
            row.get(0)
        })
        .map_err(|e| AuditError::collect(kind, e))?;
    audit::open_phone_envelope(data_key, "secret:signer", &sealed, kind)
}

/// Opens an operator API session as the phone does (sign the server's challenge with
/// the phone key) and uses the token once: a token the backend issued and accepted.
async fn operator_session(server: &url::Url, phone_id: &str, pkcs8: &[u8]) -> Result<String, CliError> {
    use opkey_protocol::api::{ChallengeRequest, ChallengeResponse, SessionRequest, SessionResponse};
    let kind = SecretKind::OperatorAccessToken;
    let failed = |e: reqwest::Error| AuditError::collect(kind, e.without_url());
    let http = reqwest::Client::new();
    let join = |path: &str| {
        server
            .join(path)
            .map_err(|e| AuditError::collect(kind, format!("bad server URL: {e}")))
    };
    let challenge: ChallengeResponse = http
        .post(join("v1/session/challenge")?)
        .json(&ChallengeRequest {
            phone_id: phone_id.to_owned(),
        })
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(failed)?
        .json()
        .await
        .map_err(failed)?;
    let signer = SoftwareSigner::from_pkcs8(pkcs8).map_err(|e| AuditError::collect(kind, e))?;
    let signature = signer
        .sign(&opkey_protocol::auth::session_message(
            phone_id,
            &challenge.challenge,
        ))
        .map_err(|e| AuditError::collect(kind, e))?;
    let session: SessionResponse = http
        .post(join("v1/session")?)
        .json(&SessionRequest {
            phone_id: phone_id.to_owned(),
            challenge: challenge.challenge,
            signature: opkey_protocol::encoding::b64(&signature),
        })
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(failed)?
        .json()
        .await
        .map_err(failed)?;
    http.get(join("v1/sync")?)
        .bearer_auth(&session.access_token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(failed)?;
    Ok(session.access_token)
}

/// The issuer key and the machine keys, each exempt in its own key file.
fn collect_key_files(secrets: &mut Secrets, issuer: &Path, units: &Path) -> Result<(), AuditError> {
    let pkcs8 = zeroize::Zeroizing::new(
        std::fs::read(issuer).map_err(|e| AuditError::collect(SecretKind::IssuerKey, e))?,
    );
    let id = secrets.add_bytes(
        SecretKind::IssuerKey,
        &audit::p256_private_scalar(&pkcs8, SecretKind::IssuerKey)?,
    );
    secrets.exempt(issuer, id, "the backend's issuer key file, created 0600");
    let mut files: Vec<PathBuf> = std::fs::read_dir(units)
        .map_err(|e| AuditError::collect(SecretKind::MachineKey, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "key"))
        .collect();
    files.sort();
    for path in files {
        let pkcs8 = opkey_machine::read_key_file(&path)
            .map_err(|e| AuditError::collect(SecretKind::MachineKey, e))?;
        let id = secrets.add_bytes(
            SecretKind::MachineKey,
            &audit::p256_private_scalar(&pkcs8, SecretKind::MachineKey)?,
        );
        secrets.exempt(
            path,
            id,
            "the simulated unit's key file (`opkey-machine keygen`), created 0600",
        );
    }
    Ok(())
}

/// `n` random decimal digits.
fn random_digits(n: usize) -> Result<zeroize::Zeroizing<String>, CliError> {
    use ring::rand::SecureRandom;
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; n]);
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CliError::Io("the system random generator failed".into()))?;
    Ok(zeroize::Zeroizing::new(
        bytes.iter().map(|b| char::from(b'0' + b % 10)).collect(),
    ))
}

/// A machine as the backend knows it, and its simulated unit.
struct RegisteredMachine {
    record: opkey_protocol::Machine,
    unit: SimulatedUnit,
}

/// The unit makes its key (as `opkey-machine keygen` does), the admin registers the
/// machine with the public key, and the unit starts from its provisioning bundle.
async fn machine(
    admin: &AdminClient,
    dir: &Path,
    name: &str,
    serial: &str,
    unit: TelematicsUnit,
    keypad: Keypad,
) -> Result<RegisteredMachine, CliError> {
    let key_file = dir.join(format!("{serial}.key"));
    let public_key = opkey_machine::generate_key_file(&key_file, &ring::rand::SystemRandom::new())
        .map_err(machine_failed)?;
    let record = admin
        .create_machine(&CreateMachine {
            name: name.into(),
            serial: serial.into(),
            unit_type: Some(unit),
            keypad: Some(keypad),
            ble_public_key: Some(public_key),
        })
        .await?;
    let bundle = admin.machine_provisioning(&record.id).await?;
    let unit = Machine::new(
        &bundle,
        opkey_machine::read_key_file(&key_file).map_err(machine_failed)?,
        Box::new(MemoryStore::new()),
    )
    .map_err(machine_failed)?;
    Ok(RegisteredMachine {
        record,
        unit: SimulatedUnit::new(unit),
    })
}

fn machine_failed(e: opkey_machine::MachineError) -> CliError {
    CliError::Io(format!("the simulated machine did not start: {e}"))
}

/// A phone's radio with `units` in range.
fn radio(clock: &SystemClock, units: &[&SimulatedUnit]) -> Arc<InMemoryTransport> {
    let radio = InMemoryTransport::new(Arc::new(*clock));
    radio.set_conditions(LinkConditions {
        att_mtu: 185,
        latency: std::time::Duration::from_millis(30),
        ..LinkConditions::default()
    });
    for unit in units {
        radio.add_peripheral(unit.peripheral());
    }
    Arc::new(radio)
}

/// Cold unlock, a usage session, warm unlock, lock.
async fn at_the_excavator(
    story: &mut Story,
    phone: &OpKey,
    radio: &Arc<InMemoryTransport>,
    excavator: &opkey_protocol::Machine,
    unit: &SimulatedUnit,
) -> Result<(), CliError> {
    let cancel = CancelToken::new();
    let cold = phone.unlock(&excavator.id, radio.clone(), &cancel).await?;
    story.say(
        "Phone",
        format!("Ola taps Unlock at {}: {}", excavator.name, outcome_line(&cold)),
    );
    story.detail(format!(
        "{} — the machine proved itself first, then one request, one answer",
        exchange_summary(&cold)
    ));
    let session = {
        let mut machine = unit.machine();
        machine.start_engine().map_err(machine_failed)?;
        machine.stop_engine(SystemClock.now()).map_err(machine_failed)?;
        machine.usage().sessions().last().cloned()
    };
    if let Some(s) = session {
        story.say(
            "Machine",
            format!(
                "Ola started the engine and stopped it: usage session {} from {} to {} ({}), relay off",
                s.usage_session,
                clock_time(s.started_at),
                s.ended_at.map(clock_time).unwrap_or_else(|| "?".into()),
                match s.ended_by {
                    Some(SessionEnd::EngineStopped) => "engine stopped",
                    Some(SessionEnd::Command) => "lock command",
                    Some(SessionEnd::Timeout) => "auto-relock",
                    Some(SessionEnd::NextUnlock) => "next unlock",
                    Some(SessionEnd::Restart) => "restart",
                    None => "open",
                },
            ),
        );
    }
    let warm = phone.unlock(&excavator.id, radio.clone(), &cancel).await?;
    story.say("Phone", format!("unlocks again: {}", outcome_line(&warm)));
    story.detail(format!(
        "{} (the machine kept her verified grant) vs {} B cold",
        exchange_summary(&warm),
        cold.bytes_sent
    ));
    let locked = phone.lock(&excavator.id, radio.clone(), &cancel).await?;
    story.say("Phone", format!("Ola locks it: {}", outcome_line(&locked)));
    Ok(())
}

struct RevocationScene<'a> {
    admin: &'a AdminClient,
    ola: &'a OpKey,
    ola_radio: &'a Arc<InMemoryTransport>,
    telehandler: &'a opkey_protocol::Machine,
    unit: &'a SimulatedUnit,
    sms: &'a SmsSource,
    revoked_key: &'a str,
    dir: &'a Path,
    clock: &'a SystemClock,
    now: time::OffsetDateTime,
}

/// A second operator's phone carries the new revocation list to the offline machine,
/// which then refuses Ola's stale phone; once Ola's phone syncs, it refuses by itself.
/// Returns the second phone.
async fn revocation_reaches_the_machine(
    story: &mut Story,
    scene: RevocationScene<'_>,
) -> Result<OpKey, CliError> {
    let RevocationScene {
        admin,
        ola,
        ola_radio,
        telehandler,
        unit,
        sms,
        revoked_key,
        dir,
        clock,
        now,
    } = scene;
    let kari = admin
        .create_operator(&CreateOperator {
            name: "Kari Lunde".into(),
            phone: "+47 412 34 999".into(),
            access_type: Some(AccessType::DigitalKey),
            send_invite: true,
        })
        .await?;
    admin
        .create_key(&CreateKey {
            operator_id: Some(kari.operator.id.clone()),
            machine_ids: vec![telehandler.id.clone()],
            access_type: AccessType::DigitalKey,
            valid_from: now - Duration::hours(1),
            valid_to: now + Duration::days(30),
            description: "Telehandler, day shift".into(),
            card_id: None,
            static_pin: None,
            pin_algorithm: None,
            pin_digits: None,
            pin_period_s: None,
        })
        .await?;
    let link = sms
        .messages(admin)
        .await?
        .iter()
        .rev()
        .find(|m| m.recipient == kari.operator.phone)
        .and_then(|m| invite_link(&m.body))
        .ok_or_else(|| CliError::Io("no invitation SMS for the second operator".into()))?;
    let kari_dir = dir.join("phone-2");
    let mut config = CoreConfig::new(&kari_dir);
    config.allow_loopback_invites = true;
    config.device_name = "Kari's phone (demo)".into();
    let kari_phone = OpKey::open(
        config,
        Arc::new(FileSecretStore::new(kari_dir.join("secrets"))),
        None,
        Arc::new(*clock),
    )?;
    kari_phone.redeem_invite(&link).await?;
    kari_phone.sync().await?;
    story.say(
        "Admin",
        format!(
            "gave operator {} a Digital Key for {}; her phone (phone 2) enrolled and synced",
            kari.operator.name, telehandler.name
        ),
    );

    admin.revoke_key(revoked_key).await?;
    story.say(
        "Admin",
        format!(
            "revoked Ola's Digital Key for {}: the backend signed a new revocation list for it",
            telehandler.name
        ),
    );
    story.detail(format!(
        "{} is offline: it learns the list from the next phone that talks to it",
        telehandler.name
    ));

    kari_phone.sync().await?;
    let kari_radio = radio(clock, &[unit]);
    let cancel = CancelToken::new();
    let report = kari_phone
        .unlock(&telehandler.id, kari_radio.clone(), &cancel)
        .await?;
    let held = unit.machine().state().revocation_sequence;
    story.say(
        "Phone 2",
        format!(
            "synced, then unlocks {}: {}",
            telehandler.name,
            outcome_line(&report)
        ),
    );
    story.detail(format!(
        "{}; the revocation list rode along: the machine now holds list #{held}",
        exchange_summary(&report)
    ));
    kari_phone
        .lock(&telehandler.id, kari_radio.clone(), &cancel)
        .await?;

    let report = ola.unlock(&telehandler.id, ola_radio.clone(), &cancel).await?;
    story.say(
        "Phone",
        format!(
            "Ola's phone has not synced since; she taps Unlock at {}: {}",
            telehandler.name,
            outcome_line(&report)
        ),
    );
    story.detail(format!(
        "the machine, offline, refused her still-unexpired grant; relay {}",
        if unit.machine().relay().is_on() {
            "ON"
        } else {
            "stays off"
        }
    ));

    ola.sync().await?;
    match ola.unlock(&telehandler.id, ola_radio.clone(), &cancel).await {
        Err(e) if e.is_before_radio() => story.say(
            "Phone",
            format!("synced; now the phone itself refuses, before any radio: \"{e}\""),
        ),
        Err(e) => story.say("Phone", format!("synced; the unlock fails: {e}")),
        Ok(report) => story.say(
            "Phone",
            format!("synced; unexpectedly: {}", outcome_line(&report)),
        ),
    }
    Ok(kari_phone)
}

/// Site 2, the quarry: phones are not allowed at the machine. Ola reads her Rolling PIN
/// offline and types it on the telehandler's keypad; wrong guesses lock the keypad out.
struct QuarryScene<'a> {
    story: &'a mut Story,
    phone: &'a OpKey,
    operator: &'a opkey_protocol::Operator,
    telehandler: &'a opkey_protocol::Machine,
    unit: &'a SimulatedUnit,
    key_id: &'a str,
}

impl QuarryScene<'_> {
    /// While the backend is up: the unit, online for a moment, takes its newer keypad
    /// table (the Rolling PIN key was created after the unit was provisioned).
    async fn fetch_keypad_table(self, admin: &AdminClient) -> Result<(), CliError> {
        let bundle = admin.machine_provisioning(&self.telehandler.id).await?;
        let table = bundle
            .keypad
            .ok_or_else(|| CliError::Io(format!("{} has no keypad table", self.telehandler.name)))?;
        let pins = table.rolling_pins.len();
        let update = self
            .unit
            .machine()
            .apply_keypad_table(table)
            .map_err(unit_failed)?;
        let version = match update {
            TableUpdate::Replaced { version } => version,
            TableUpdate::Ignored { held, .. } => held,
        };
        self.story.say(
            "Machine",
            format!(
                "{} at the quarry (site 2), online for a moment, took its keypad table #{version} \
                 ({pins} Rolling PIN key)",
                self.telehandler.name
            ),
        );
        Ok(())
    }

    /// Offline: read the PIN, type it, see it refused when replayed, guesses locked out.
    fn at_the_keypad(self) -> Result<(), CliError> {
        let Self {
            story,
            phone,
            operator,
            telehandler,
            unit,
            key_id,
        } = self;
        let view = phone.pin(key_id)?;
        story.say(
            "Phone",
            format!(
                "at the quarry phones stay in the cabin: Ola reads her Rolling PIN for {} offline:",
                telehandler.name
            ),
        );
        let (slot, code) = view.pin.split_at(3.min(view.pin.len()));
        story.detail(format!(
            "{slot} {code}   valid {} s more (slot {slot}, {} digits, new PIN every {} s)",
            view.seconds_left, view.digits, view.period_s
        ));
        if let Some(warning) = &view.clock_warning {
            story.detail(format!("warning: {warning}"));
        }

        let reply = type_on_keypad(unit, &view.pin)?;
        match reply.outcome {
            KeypadOutcome::Accepted(access) => {
                story.say(
                    "Keypad",
                    format!(
                        "Ola walks over and types it: accepted, relay {}, usage session {} for {} ({})",
                        if unit.machine().relay().is_on() {
                            "ON"
                        } else {
                            "off"
                        },
                        access.usage_session,
                        operator.name,
                        access
                            .operator_id
                            .as_deref()
                            .unwrap_or("no operator: not a personal key"),
                    ),
                );
                let mut machine = unit.machine();
                machine.start_engine().map_err(unit_failed)?;
                machine.stop_engine(SystemClock.now()).map_err(unit_failed)?;
                if let Some(s) = machine.usage().sessions().last() {
                    story.detail(format!(
                        "she works, stops the engine: session {} recorded with key {} and operator {}",
                        s.usage_session,
                        s.key_id,
                        s.operator_id.as_deref().unwrap_or("none")
                    ));
                }
            }
            KeypadOutcome::Refused(reason) => {
                story.say("Keypad", format!("Ola types it: REFUSED: {reason}"));
            }
        }

        let reply = type_on_keypad(unit, &view.pin)?;
        story.say(
            "Keypad",
            format!(
                "someone who saw her type it tries the same PIN: {}",
                keypad_line(&reply.outcome)
            ),
        );

        let mut guesses = Vec::new();
        for n in 1..=4u32 {
            let guess = wrong_code(slot, code, n);
            guesses.push(keypad_line(&type_on_keypad(unit, &guess)?.outcome));
        }
        story.say("Keypad", "then guesses four PINs in her slot:");
        story.detail(
            guesses
                .iter()
                .enumerate()
                .map(|(i, line)| format!("#{}: {line}", i + 1))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let locked = unit
            .machine()
            .keypad_locked_out_for(SystemClock.now())
            .unwrap_or(0);
        story.detail(format!(
            "three wrong entries are free; the fourth locked the keypad for {locked} s"
        ));

        let view = phone.pin(key_id)?;
        let reply = type_on_keypad(unit, &view.pin)?;
        story.say(
            "Keypad",
            format!(
                "even Ola's PIN, typed during the lockout: {}",
                keypad_line(&reply.outcome)
            ),
        );
        Ok(())
    }
}

/// Digits typed on the simulated unit's keypad now.
fn type_on_keypad(unit: &SimulatedUnit, typed: &str) -> Result<KeypadReply, CliError> {
    unit.machine()
        .keypad_entry(typed, SystemClock.now())
        .map_err(unit_failed)
}

/// The `n`-th wrong guess: the right slot, a code that is not the one shown.
fn wrong_code(slot: &str, code: &str, n: u32) -> String {
    let shifted: String = code
        .chars()
        .map(|c| {
            let d = c.to_digit(10).unwrap_or(0);
            char::from_digit((d + n) % 10, 10).unwrap_or('0')
        })
        .collect();
    format!("{slot}{shifted}")
}

/// `accepted (usage session 3)`, `REFUSED: wrong PIN`, `REFUSED: locked for 30 s`.
fn keypad_line(outcome: &KeypadOutcome) -> String {
    match outcome {
        KeypadOutcome::Accepted(access) => format!("accepted (usage session {})", access.usage_session),
        KeypadOutcome::Refused(KeypadRefusal::LockedOut { retry_after_s }) => {
            format!("REFUSED: locked for {retry_after_s} s more")
        }
        KeypadOutcome::Refused(reason) => format!("REFUSED: {reason}"),
    }
}

fn unit_failed(e: opkey_machine::MachineError) -> CliError {
    CliError::Io(format!("the simulated machine failed: {e}"))
}

/// `unlocked (start the engine within 120 s)`, `locked`, `refused: revoked`.
fn outcome_line(report: &UnlockReport) -> String {
    match report.outcome {
        UnlockOutcome::Unlocked { relock_after_s, .. } => {
            format!("unlocked (start the engine within {relock_after_s} s)")
        }
        UnlockOutcome::Locked { .. } => "locked".into(),
        UnlockOutcome::Denied { reason } => format!("REFUSED by the machine: {}", reason.as_str()),
    }
}

fn clock_time(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .unwrap_or_default()
}

/// An invite link tapped on a phone without the app opens the backend's landing page: what
/// to do, the button that opens the app, and the code to type.
async fn browser_opens_the_link(story: &mut Story, link: &str) -> Result<(), CliError> {
    let page = reqwest::get(link)
        .await
        .map_err(|e| CliError::Io(format!("the invite landing page did not load: {e}")))?;
    let status = page.status();
    let html = page
        .text()
        .await
        .map_err(|e| CliError::Io(format!("the invite landing page did not load: {e}")))?;
    let custom_scheme = html.contains("href=\"opkey://invite/");
    if !status.is_success() || !custom_scheme {
        return Err(CliError::Io(format!(
            "the invite landing page is wrong (HTTP {status}, app button: {custom_scheme})"
        )));
    }
    story.say(
        "Browser",
        format!(
            "the link opened before the app was installed: landing page (HTTP {}) with install steps, \
             an \"Open in OpKey\" button and the code to type",
            status.as_u16()
        ),
    );
    Ok(())
}

fn invite_link(body: &str) -> Option<String> {
    body.split_whitespace()
        .find(|w| w.contains("/i/"))
        .map(|w| w.trim_end_matches(['.', ',']).to_owned())
}

/// The keys as `opkey keys` shows them, indented under the story.
fn print_indented(story: &Story, keys: &[KeyView]) {
    story.line("");
    for line in table_lines(&key_rows(keys)) {
        story.line(format!("             {line}"));
    }
    story.line("");
}

/// What a sync changed, in the words an operator would use.
fn describe_changes(before: &[KeyView], after: &[KeyView]) -> String {
    let after_by_id: BTreeMap<&str, &KeyView> = after.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut lines = Vec::new();
    for old in before {
        match after_by_id.get(old.id.as_str()) {
            None => lines.push(format!(
                "{} for {} is gone from the phone",
                old.access_type.label(),
                old.machines.first().map(|m| m.name.as_str()).unwrap_or("?")
            )),
            Some(new) if new.version != old.version => {
                let mut change = format!(
                    "{} {}: version {} → {}",
                    new.access_type.label(),
                    new.id,
                    old.version,
                    new.version
                );
                if new.valid_to != old.valid_to {
                    change.push_str(&format!(
                        "; ends {} (was {})",
                        when(new.valid_to),
                        when(old.valid_to)
                    ));
                }
                if new.description != old.description {
                    change.push_str(&format!("; \"{}\"", new.description));
                }
                lines.push(change);
            }
            Some(_) => {}
        }
    }
    lines.join("\n")
}

fn random_token() -> Result<String, CliError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CliError::Io("the system random generator failed".into()))?;
    Ok(opkey_protocol::encoding::b64(&bytes))
}
