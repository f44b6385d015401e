//! `opkey`: the desktop operator app on the OpKey core, the admin client for the
//! reference backend, and `opkey demo`, the whole story in one process.
//!
//! Output is for people by default and JSON with `--json`; errors go to stderr with a
//! non-zero exit status and say what to do. This binary holds no product logic: the
//! phone side is `opkey-core`, the backend is `opkey-server`.

mod admin;
mod audit;
mod demo;
mod error;
mod home;
mod output;
mod phone;
mod pin;
mod simulated;
mod unlock;

use clap::{Parser, Subcommand};
use error::CliError;
use opkey_core::MachineCommand;
use std::path::PathBuf;
use std::process::ExitCode;
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "opkey",
    version,
    about = "OpKey: machine keys on your phone, from the desktop",
    after_help = "Exit status: 0 ok; 1 other failure; 2 bad command or invite; 3 network or server; \
4 machine not reachable; 5 machine refused; 6 not a PIN key; 7 PIN not synced to this \
installation; 8 key not usable now (expired, revoked, not yet valid)."
)]
struct Cli {
    /// Folder holding this installation's keys and settings (default: $OPKEY_HOME or ~/.opkey).
    #[arg(long, global = true, env = "OPKEY_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this installation with an SMS invite: the link, or the code typed by hand.
    Invite {
        /// `https://…/i/<token>`, `opkey://invite/<token>`, or a code like `ABCD-EFGH-JKM`.
        link_or_code: String,
        /// The backend to redeem at (needed for a typed code on a fresh installation).
        #[arg(long, value_name = "URL")]
        server: Option<Url>,
        /// Also accept invite links from this host (repeatable; remembered in the settings).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
    },
    /// Fetch the latest keys from the backend.
    Sync,
    /// List the keys held on this installation (works offline).
    Keys {
        /// Only keys usable right now.
        #[arg(long)]
        usable: bool,
    },
    /// Show one key in detail.
    Key { id: String },
    /// Enrollment, last sync, clock offset.
    Status,
    /// Show the Rolling PIN of a key to type on the machine's keypad (works offline), or
    /// a personal Static PIN.
    ///
    /// Exit status: 6 the key is not a PIN key; 7 its PIN is not on this installation
    /// yet (run `opkey sync`); 8 the key is expired, revoked or not valid yet.
    Pin {
        /// The key's id, as `opkey keys` shows it.
        key: String,
        /// Keep showing the PIN with a countdown, rolling over to the next one, until
        /// Ctrl-C (with --json: one JSON line per PIN).
        #[arg(long)]
        watch: bool,
    },
    /// Unlock a machine with your Digital Key (it may then be started).
    Unlock(MachineArgs),
    /// Lock a machine with your Digital Key (its immobilizer goes on).
    Lock(MachineArgs),
    /// Administer the backend (admins and fleet admins).
    Admin(admin::AdminArgs),
    /// The whole story on embedded defaults: backend, SMS outbox and phone in one process.
    Demo {
        /// Capture every log line at trace level and the story output, then scan them and
        /// every file the demo wrote for each secret it used (exit status 1 if one is found).
        #[arg(long)]
        audit_secrets: bool,
    },
}

#[derive(Debug, clap::Args)]
struct MachineArgs {
    /// The machine's id, or its name as `opkey keys` shows it.
    machine: String,
    /// A running `opkey-machine run --listen ADDR` to reach (repeatable; remembered in
    /// the settings and tried with the ones remembered before).
    #[arg(long = "via", value_name = "HOST:PORT")]
    via: Vec<String>,
    /// Reach the machine over this computer's Bluetooth adapter.
    #[arg(long)]
    ble: bool,
}

impl MachineArgs {
    fn reach(self) -> (String, unlock::Reach) {
        let reach = unlock::Reach {
            via: self.via,
            ble: self.ble,
        };
        (self.machine, reach)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The secrets audit installs its own capture of every log line.
    if !matches!(cli.command, Command::Demo { audit_secrets: true }) {
        init_logging();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.exit_status())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.json;
    match cli.command {
        Command::Admin(args) => admin::run(args, json).await,
        Command::Demo { audit_secrets } => demo::run(audit_secrets).await,
        Command::Invite {
            link_or_code,
            server,
            allow_hosts,
        } => {
            let home = home::Home::resolve(cli.home)?;
            phone::invite(&home, &link_or_code, server, allow_hosts, json).await
        }
        Command::Sync => phone::sync(&home::Home::resolve(cli.home)?, json).await,
        Command::Keys { usable } => phone::keys(&home::Home::resolve(cli.home)?, usable, json),
        Command::Key { id } => phone::key(&home::Home::resolve(cli.home)?, &id, json),
        Command::Status => phone::status(&home::Home::resolve(cli.home)?, json),
        Command::Pin { key, watch } => pin::run(&home::Home::resolve(cli.home)?, &key, watch, json).await,
        Command::Unlock(args) => {
            let home = home::Home::resolve(cli.home)?;
            let (machine, reach) = args.reach();
            unlock::run(&home, &machine, MachineCommand::Unlock, reach, json).await
        }
        Command::Lock(args) => {
            let home = home::Home::resolve(cli.home)?;
            let (machine, reach) = args.reach();
            unlock::run(&home, &machine, MachineCommand::Lock, reach, json).await
        }
    }
}

/// Logs go to stderr: errors only, unless RUST_LOG asks for more (e.g. RUST_LOG=opkey_core=debug).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
