//! `opkey admin`: the fleet backend's Access Management from the command line. Each
//! subcommand is one admin API call; `--json` prints the object the server returned.

use crate::error::CliError;
use crate::output::{print_json, table, when};
use clap::{Args, Subcommand};
use opkey_protocol::api::{
    AdminRole, CreateAdminUser, CreateKey, CreateMachine, CreateOperator, EditKey, EditMachine, EditOperator,
    UsageEventKind,
};
use opkey_protocol::{AccessType, Keypad, TelematicsUnit};
use opkey_server::admin_client::{AdminClient, ImportFormat};
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The backend's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "OPKEY_SERVER", value_name = "URL")]
    server: Url,
    /// An admin or fleet-admin token.
    #[arg(long, env = "OPKEY_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: String,
    /// Act in this organization (bootstrap admin only).
    #[arg(long, value_name = "ORG_ID")]
    org: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Who this token belongs to.
    Whoami,
    /// Customers of the backend.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Admin users and their roles.
    #[command(subcommand)]
    User(UserCommand),
    /// Operators: the people who get keys.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Machines and their telematics units.
    #[command(subcommand)]
    Machine(MachineCommand),
    /// Keys: access to machines.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The dev SMS gateway's outbox.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Usage events the operators' phones uploaded: unlocks, locks, refusals.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Creates an admin user of the organization acted in and prints its token once.
    Create {
        #[arg(long)]
        name: String,
        /// admin, fleet-admin or viewer.
        #[arg(long, value_parser = parse_role)]
        role: AdminRole,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    Create {
        #[arg(long)]
        name: String,
        /// With country code, e.g. +45 12 34 56 78.
        #[arg(long)]
        phone: String,
        #[arg(long = "access-type", value_parser = parse_access_type)]
        access_type: Option<AccessType>,
        /// Send an SMS invitation.
        #[arg(long)]
        invite: bool,
    },
    List,
    Show {
        id: String,
    },
    Edit {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long = "access-type", value_parser = parse_access_type)]
        access_type: Option<AccessType>,
    },
    Delete {
        id: String,
    },
    /// Sends a new SMS invitation; the operator's older invites and phone are revoked.
    Invite {
        id: String,
    },
    /// Bulk upload from CSV or Excel (.xlsx): imports valid rows, reports bad ones.
    Import {
        file: PathBuf,
        /// Only these rows, as a spreadsheet numbers them: e.g. 2,4-6.
        #[arg(long, value_name = "ROWS")]
        select: Option<String>,
        /// Send SMS invitations to the imported operators.
        #[arg(long)]
        invite: bool,
        /// Only show the per-row report; import nothing.
        #[arg(long)]
        preview: bool,
    },
    /// Writes the CSV template for bulk upload.
    Template {
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MachineCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        serial: String,
        /// TU600 or TU700.
        #[arg(long, value_parser = parse_unit)]
        unit: Option<TelematicsUnit>,
        /// dual-id, k300 or none.
        #[arg(long, value_parser = parse_keypad)]
        keypad: Option<Keypad>,
        /// The machine's P-256 public key (SEC1 uncompressed, base64url).
        #[arg(long = "ble-public-key")]
        ble_public_key: Option<String>,
    },
    List,
    /// Renames a machine or registers (replaces) its BLE public key.
    Edit {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        serial: Option<String>,
        /// The machine's P-256 public key (SEC1 uncompressed, base64url), as
        /// `opkey-machine keygen` prints it.
        #[arg(long = "ble-public-key")]
        ble_public_key: Option<String>,
    },
    /// Writes the machine's provisioning bundle, for `opkey-machine run --provision FILE`.
    Provisioning {
        id: String,
        /// Where to write the bundle (JSON); standard output when left out.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Oldest first.
    List {
        #[arg(long, value_name = "MACHINE_ID")]
        machine: Option<String>,
        #[arg(long, value_name = "OPERATOR_ID")]
        operator: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    Create {
        /// The operator of a personal key; leave out for a non-personal key.
        #[arg(long)]
        operator: Option<String>,
        /// A machine this key opens (repeat for several).
        #[arg(long = "machine", required = true)]
        machines: Vec<String>,
        #[arg(long = "type", value_parser = parse_access_type)]
        access_type: AccessType,
        #[arg(long, value_parser = parse_time)]
        from: OffsetDateTime,
        #[arg(long, value_parser = parse_time)]
        to: OffsetDateTime,
        #[arg(long, default_value = "")]
        description: String,
        /// The card's id, for card access types.
        #[arg(long = "card-id")]
        card_id: Option<String>,
        /// Rolling PIN keys: digits of the code, 6–10 (default 6; the operator types 3 more).
        #[arg(long = "pin-digits", value_name = "N")]
        pin_digits: Option<u8>,
        /// Rolling PIN keys: seconds per PIN, 30–3600 (default 60).
        #[arg(long = "pin-period", value_name = "SECONDS")]
        pin_period: Option<u32>,
        /// Rolling PIN keys: sha1, sha256 (default) or sha512.
        #[arg(long = "pin-algorithm", value_name = "ALG", value_parser = parse_pin_algorithm)]
        pin_algorithm: Option<opkey_protocol::pin::PinAlgorithm>,
        /// Static PIN keys: the PIN, 4–8 digits (left out, the backend generates one).
        #[arg(long = "static-pin", value_name = "DIGITS")]
        static_pin: Option<String>,
    },
    List {
        #[arg(long)]
        operator: Option<String>,
        #[arg(long)]
        machine: Option<String>,
    },
    Show {
        id: String,
    },
    /// Changes the end date and/or the description.
    Edit {
        id: String,
        #[arg(long, value_parser = parse_time)]
        to: Option<OffsetDateTime>,
        #[arg(long)]
        description: Option<String>,
    },
    Delete {
        id: String,
    },
    /// Withdraws a key without deleting it.
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    List,
}

pub async fn run(args: AdminArgs, json: bool) -> Result<(), CliError> {
    let client = AdminClient::new(&args.server, &args.token).in_organization(args.org);
    match args.command {
        AdminCommand::Whoami => {
            let me = client.whoami().await?;
            if json {
                print_json(&me);
            } else {
                println!("{} ({:?}) in {}", me.name, me.role, me.organization_id);
            }
        }
        AdminCommand::Org(cmd) => org(&client, cmd, json).await?,
        AdminCommand::User(UserCommand::Create { name, role }) => {
            let user = client
                .create_user(&CreateAdminUser {
                    name,
                    role,
                    organization_id: None,
                })
                .await?;
            if json {
                print_json(&user);
            } else {
                println!(
                    "Created {} ({}). Token (shown once): {}",
                    user.name, user.id, user.token
                );
            }
        }
        AdminCommand::Operator(cmd) => operator(&client, cmd, json).await?,
        AdminCommand::Machine(cmd) => machine(&client, cmd, json).await?,
        AdminCommand::Key(cmd) => key(&client, cmd, json).await?,
        AdminCommand::Events(EventsCommand::List { machine, operator }) => {
            let events = client.events(machine.as_deref(), operator.as_deref()).await?;
            if json {
                print_json(&events);
            } else if events.is_empty() {
                println!("No usage events yet: phones upload them when they sync.");
            } else {
                let mut rows = vec![
                    ["AT", "KIND", "OUTCOME", "MACHINE", "KEY", "OPERATOR", "SESSION"]
                        .map(str::to_owned)
                        .to_vec(),
                ];
                for v in events {
                    let e = v.event;
                    rows.push(vec![
                        when(e.at),
                        event_kind(e.kind).to_owned(),
                        e.outcome,
                        e.machine_id,
                        e.key_id.unwrap_or_default(),
                        v.operator_id,
                        e.usage_session.map(|s| s.to_string()).unwrap_or_default(),
                    ]);
                }
                table(&rows);
            }
        }
        AdminCommand::Sms(SmsCommand::List) => {
            let messages = client.sms_outbox().await?;
            if json {
                print_json(&messages);
            } else if messages.is_empty() {
                println!("The SMS outbox is empty.");
            } else {
                for m in messages {
                    println!("{}  to {}\n  {}\n", when(m.sent_at), m.recipient, m.body);
                }
            }
        }
    }
    Ok(())
}

async fn org(client: &AdminClient, cmd: OrgCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        OrgCommand::Create { name } => {
            let org = client.create_organization(&name).await?;
            if json {
                print_json(&org);
            } else {
                println!("Created organization {} ({})", org.name, org.id);
            }
        }
        OrgCommand::List => {
            let orgs = client.organizations().await?;
            if json {
                print_json(&orgs);
            } else {
                let mut rows = vec![vec!["ID".to_owned(), "NAME".to_owned()]];
                rows.extend(orgs.into_iter().map(|o| vec![o.id, o.name]));
                table(&rows);
            }
        }
    }
    Ok(())
}

async fn operator(client: &AdminClient, cmd: OperatorCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        OperatorCommand::Create {
            name,
            phone,
            access_type,
            invite,
        } => {
            let op = client
                .create_operator(&CreateOperator {
                    name,
                    phone,
                    access_type,
                    send_invite: invite,
                })
                .await?;
            if json {
                print_json(&op);
            } else {
                let invited = if op.invite.is_some() {
                    ", SMS invitation sent"
                } else {
                    ""
                };
                println!(
                    "Created operator {} ({}){invited}",
                    op.operator.name, op.operator.id
                );
            }
        }
        OperatorCommand::List => {
            let ops = client.operators().await?;
            if json {
                print_json(&ops);
            } else {
                let mut rows = vec![
                    ["ID", "NAME", "PHONE", "PHONE ENROLLED", "INVITE"]
                        .map(str::to_owned)
                        .to_vec(),
                ];
                for v in ops {
                    let invite = v
                        .invite
                        .map(|i| format!("{:?}", i.status).to_lowercase())
                        .unwrap_or_default();
                    rows.push(vec![
                        v.operator.id,
                        v.operator.name,
                        v.operator.phone.to_string(),
                        if v.operator.enrolled { "yes" } else { "no" }.to_owned(),
                        invite,
                    ]);
                }
                table(&rows);
            }
        }
        OperatorCommand::Show { id } => print_json(&client.operator(&id).await?),
        OperatorCommand::Edit {
            id,
            name,
            phone,
            access_type,
        } => {
            let op = client
                .edit_operator(
                    &id,
                    &EditOperator {
                        name,
                        phone,
                        access_type,
                    },
                )
                .await?;
            if json {
                print_json(&op);
            } else {
                println!("Updated operator {} ({})", op.operator.name, op.operator.id);
            }
        }
        OperatorCommand::Delete { id } => {
            client.delete_operator(&id).await?;
            if !json {
                println!("Deleted operator {id} and their keys in this organization");
            }
        }
        OperatorCommand::Invite { id } => {
            let invite = client.invite_operator(&id).await?;
            if json {
                print_json(&invite);
            } else {
                println!(
                    "Sent a new SMS invitation ({}), valid until {}",
                    invite.id,
                    when(invite.expires_at)
                );
            }
        }
        OperatorCommand::Import {
            file,
            select,
            invite,
            preview,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display()), None))?;
            let format = ImportFormat::from_path(&file);
            if preview {
                let report = client.import_preview(bytes, format).await?;
                if json {
                    print_json(&report);
                } else {
                    let valid = report.rows.iter().filter(|r| r.valid).count();
                    println!("{} row(s) read, {valid} valid.", report.rows.len());
                    print_problems(&report.problems);
                }
            } else {
                let report = client.import(bytes, format, select.as_deref(), invite).await?;
                if json {
                    print_json(&report);
                } else {
                    for i in &report.imported {
                        println!(
                            "row {}: imported {} ({})",
                            i.row, i.operator.operator.name, i.operator.operator.id
                        );
                    }
                    println!(
                        "{} operator(s) imported, {} row(s) skipped.",
                        report.imported.len(),
                        report.skipped.len()
                    );
                    print_problems(&report.skipped);
                }
            }
        }
        OperatorCommand::Template { output } => {
            let csv = client.import_template().await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, csv)?;
                    println!("Wrote the import template to {}", path.display());
                }
                None => print!("{csv}"),
            }
        }
    }
    Ok(())
}

fn print_problems(problems: &[opkey_protocol::api::ImportProblem]) {
    for p in problems {
        println!("row {}: {}: {}", p.row, p.field, p.message);
    }
}

async fn machine(client: &AdminClient, cmd: MachineCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        MachineCommand::Create {
            name,
            serial,
            unit,
            keypad,
            ble_public_key,
        } => {
            let m = client
                .create_machine(&CreateMachine {
                    name,
                    serial,
                    unit_type: unit,
                    keypad,
                    ble_public_key,
                })
                .await?;
            if json {
                print_json(&m);
            } else {
                println!(
                    "Registered machine {} ({}, {})",
                    m.name,
                    m.id,
                    m.unit_type.as_str()
                );
            }
        }
        MachineCommand::List => {
            let machines = client.machines().await?;
            if json {
                print_json(&machines);
            } else {
                let mut rows = vec![
                    ["ID", "NAME", "SERIAL", "UNIT", "KEYPAD"]
                        .map(str::to_owned)
                        .to_vec(),
                ];
                for m in machines {
                    rows.push(vec![
                        m.id,
                        m.name,
                        m.serial,
                        m.unit_type.as_str().into(),
                        m.keypad.as_str().into(),
                    ]);
                }
                table(&rows);
            }
        }
        MachineCommand::Edit {
            id,
            name,
            serial,
            ble_public_key,
        } => {
            if name.is_none() && serial.is_none() && ble_public_key.is_none() {
                return Err(CliError::usage(
                    "nothing to change",
                    Some("pass --ble-public-key KEY, --name TEXT and/or --serial TEXT".to_owned()),
                ));
            }
            let m = client
                .edit_machine(
                    &id,
                    &EditMachine {
                        name,
                        serial,
                        ble_public_key,
                    },
                )
                .await?;
            if json {
                print_json(&m);
            } else {
                println!("Updated machine {} ({})", m.name, m.id);
            }
        }
        MachineCommand::Provisioning { id, output } => {
            let bundle = client.machine_provisioning(&id).await?;
            let text = serde_json::to_string_pretty(&bundle).expect("a bundle always serialises");
            match output {
                Some(path) => {
                    std::fs::write(&path, format!("{text}\n"))
                        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
                    if json {
                        print_json(&bundle);
                    } else {
                        println!(
                            "Wrote the provisioning bundle of {} to {}: start the unit with \
                             `opkey-machine run --provision {} --key KEY_FILE --state STATE_FILE --listen 127.0.0.1:7001`",
                            bundle.name,
                            path.display(),
                            path.display()
                        );
                    }
                }
                None => println!("{text}"),
            }
        }
        MachineCommand::Delete { id } => {
            client.delete_machine(&id).await?;
            if !json {
                println!("Deleted machine {id}");
            }
        }
    }
    Ok(())
}

async fn key(client: &AdminClient, cmd: KeyCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        KeyCommand::Create {
            operator,
            machines,
            access_type,
            from,
            to,
            description,
            card_id,
            pin_digits,
            pin_period,
            pin_algorithm,
            static_pin,
        } => {
            let body = CreateKey {
                operator_id: operator,
                machine_ids: machines,
                access_type,
                valid_from: from,
                valid_to: to,
                description,
                card_id,
                static_pin,
                pin_algorithm,
                pin_digits,
                pin_period_s: pin_period,
            };
            let k = client.create_key(&body).await?;
            if json {
                print_json(&k);
            } else {
                println!("Created {} key {}", k.access_type.label(), k.id);
            }
        }
        KeyCommand::List { operator, machine } => {
            let keys = client.keys(operator.as_deref(), machine.as_deref()).await?;
            if json {
                print_json(&keys);
            } else {
                let now = OffsetDateTime::now_utc();
                let mut rows = vec![
                    ["ID", "TYPE", "STATE", "OPERATOR", "MACHINES", "TO", "DESCRIPTION"]
                        .map(str::to_owned)
                        .to_vec(),
                ];
                for k in keys {
                    rows.push(vec![
                        k.id.clone(),
                        k.access_type.label().into(),
                        k.state_at(now).as_str().into(),
                        k.operator_id.clone().unwrap_or_else(|| "(non-personal)".into()),
                        k.machine_ids.join(","),
                        when(k.validity.valid_to),
                        k.description.clone(),
                    ]);
                }
                table(&rows);
            }
        }
        KeyCommand::Show { id } => print_json(&client.key(&id).await?),
        KeyCommand::Edit { id, to, description } => {
            if to.is_none() && description.is_none() {
                return Err(CliError::usage(
                    "nothing to change",
                    Some("pass --to RFC3339 and/or --description TEXT".to_owned()),
                ));
            }
            let k = client
                .edit_key(
                    &id,
                    &EditKey {
                        valid_to: to,
                        description,
                    },
                )
                .await?;
            if json {
                print_json(&k);
            } else {
                println!(
                    "Updated key {} (version {}), valid until {}",
                    k.id,
                    k.version,
                    when(k.validity.valid_to)
                );
            }
        }
        KeyCommand::Delete { id } => {
            client.delete_key(&id).await?;
            if !json {
                println!("Deleted key {id}");
            }
        }
        KeyCommand::Revoke { id } => {
            let k = client.revoke_key(&id).await?;
            if json {
                print_json(&k);
            } else {
                println!("Revoked key {}", k.id);
            }
        }
    }
    Ok(())
}

fn event_kind(kind: UsageEventKind) -> &'static str {
    match kind {
        UsageEventKind::UnlockAttempt => "unlock",
        UsageEventKind::LockAttempt => "lock",
        UsageEventKind::UsageSession => "session",
    }
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| format!("'{s}' is not an RFC 3339 time, e.g. 2026-12-01T07:00:00Z"))
}

fn parse_pin_algorithm(s: &str) -> Result<opkey_protocol::pin::PinAlgorithm, String> {
    s.parse()
        .map_err(|e: opkey_protocol::pin::PinSpecError| e.to_string())
}

fn parse_access_type(s: &str) -> Result<AccessType, String> {
    s.parse()
        .map_err(|e: opkey_protocol::model::UnknownAccessType| e.to_string())
}

fn parse_unit(s: &str) -> Result<TelematicsUnit, String> {
    s.parse()
}

fn parse_keypad(s: &str) -> Result<Keypad, String> {
    s.parse()
}

fn parse_role(s: &str) -> Result<AdminRole, String> {
    match s.trim().to_ascii_lowercase().replace([' ', '_'], "-").as_str() {
        "admin" => Ok(AdminRole::Admin),
        "fleet-admin" => Ok(AdminRole::FleetAdmin),
        "viewer" => Ok(AdminRole::Viewer),
        _ => Err(format!("unknown role '{s}': use admin, fleet-admin or viewer")),
    }
}
