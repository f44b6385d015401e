//! `opkey demo`: the whole story in one process on embedded defaults — a backend on
//! loopback with a temporary SQLite file and the dev SMS outbox, an admin, and a phone
//! (the real core) — told as a short, readable story. Everything it shows goes through
//! the same admin client and phone core as the rest of the CLI.

use crate::error::CliError;
use crate::output::when;
use crate::phone::print_keys;
use opkey_core::{CoreConfig, FileSecretStore, KeyView, OpKey};
use opkey_protocol::api::{AdminRole, CreateAdminUser, CreateKey, CreateMachine, CreateOperator, EditKey};
use opkey_protocol::{AccessType, Clock, Keypad, SystemClock, TelematicsUnit};
use opkey_server::admin_client::AdminClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::Duration;

struct Story {
    step: u32,
}

impl Story {
    fn say(&mut self, who: &str, what: impl AsRef<str>) {
        self.step += 1;
        println!("{:>2}. {who:<8} {}", self.step, what.as_ref());
    }

    fn detail(&self, what: impl AsRef<str>) {
        for line in what.as_ref().lines() {
            println!("             {line}");
        }
    }
}

pub async fn run() -> Result<(), CliError> {
    let workdir = tempfile::tempdir()?;
    let clock = SystemClock;
    let now = clock.now().replace_nanosecond(0).unwrap_or(clock.now());
    let mut story = Story { step: 0 };
    println!("OpKey demo: from an admin's first click to keys on a phone with no signal\n");

    let admin_token = random_token()?;
    let config = opkey_server::ServerConfig::new(workdir.path().join("backend.db"), admin_token.clone());
    let server = opkey_server::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| CliError::Io(format!("the embedded backend did not start: {e}")))?;
    story.say(
        "Backend",
        format!("listening on {} (temporary SQLite, dev SMS outbox)", server.url()),
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

    let excavator = machine(
        &admin,
        "Excavator EX-210",
        "EX210-0042",
        TelematicsUnit::Tu700,
        Keypad::K300,
    )
    .await?;
    let telehandler = machine(
        &admin,
        "Telehandler TH-14",
        "TH14-1187",
        TelematicsUnit::Tu600,
        Keypad::DualId,
    )
    .await?;
    let lift = machine(
        &admin,
        "Scissor lift SL-8",
        "SL8-0311",
        TelematicsUnit::Tu600,
        Keypad::DualId,
    )
    .await?;
    story.say("Admin", "registered three machines:");
    story.detail(format!(
        "{} (TU700, K300 keypad), {} (TU600, DualID), {} (TU600, DualID)",
        excavator.name, telehandler.name, lift.name
    ));

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
    admin
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
            &telehandler.id,
            day * 2,
            day * 9,
            "Next week's job",
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
        "gave Ola five keys: Digital Key, Rolling PIN, Key Card, an upcoming and an ended one",
    );

    let sms = admin.sms_outbox().await?;
    let message = sms
        .iter()
        .rev()
        .find(|m| m.recipient == operator.operator.phone)
        .ok_or_else(|| CliError::Io("the SMS outbox holds no invitation for the operator".into()))?;
    story.say("SMS", format!("to {}:", message.recipient.masked()));
    story.detail(format!("\"{}\"", message.body));
    let link = message
        .body
        .split_whitespace()
        .find(|w| w.contains("/i/"))
        .map(|w| w.trim_end_matches(['.', ',']))
        .ok_or_else(|| CliError::Io("the invitation SMS carries no link".into()))?;

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
    print_indented(&before);

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
    print_indented(&after);

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
    println!("\nDone. The temporary backend and phone files are removed on exit.");
    Ok(())
}

async fn machine(
    admin: &AdminClient,
    name: &str,
    serial: &str,
    unit: TelematicsUnit,
    keypad: Keypad,
) -> Result<opkey_protocol::Machine, CliError> {
    Ok(admin
        .create_machine(&CreateMachine {
            name: name.into(),
            serial: serial.into(),
            unit_type: Some(unit),
            keypad: Some(keypad),
            ble_public_key: None,
        })
        .await?)
}

fn print_indented(keys: &[KeyView]) {
    println!();
    print_keys(keys, "             ");
    println!();
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
