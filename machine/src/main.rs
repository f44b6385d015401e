//! `opkey-machine`: the simulated telematics unit as a process.
//!
//! - `keygen --key FILE`: make the machine key; print its public key for registration.
//! - `run --provision FILE --key FILE --state FILE --listen ADDR`: serve the local socket
//!   transport; print `listening on ADDR` first, then one status line per event. Lines on
//!   stdin drive the simulated engine: `start`, `stop`, `status`.

use clap::{Parser, Subcommand};
use opkey_machine::socket::{ServeOptions, serve};
use opkey_machine::{Machine, MachineError, MachineEvent, generate_key_file, read_provisioning};
use opkey_protocol::{Clock, SystemClock};
use ring::rand::SystemRandom;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(name = "opkey-machine", version, about = "A simulated OpKey telematics unit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the machine's P-256 key (PKCS#8, mode 0600) and print its public key.
    Keygen {
        #[arg(long)]
        key: PathBuf,
    },
    /// Run the machine, serving the local socket transport.
    Run {
        /// The provisioning bundle (JSON) from the backend.
        #[arg(long)]
        provision: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// Where counters, revocations, cached grants and the usage log persist.
        #[arg(long)]
        state: PathBuf,
        /// Loopback address to listen on; port 0 picks one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// The ATT MTU each socket connection stands for.
        #[arg(long, default_value_t = opkey_machine::socket::SOCKET_ATT_MTU,
              value_parser = clap::value_parser!(u16).range(23..))]
        mtu: u16,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opkey-machine: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Keygen { key } => {
            let public_key = generate_key_file(&key, &SystemRandom::new())?;
            println!("{public_key}");
            Ok(())
        }
        Command::Run {
            provision,
            key,
            state,
            listen,
            mtu,
        } => {
            let machine = Machine::open(&read_provisioning(&provision)?, &key, &state)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run_machine(machine, &listen, mtu))
        }
    }
}

async fn run_machine(machine: Machine, listen: &str, mtu: u16) -> Result<(), CliError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut options = ServeOptions::new(clock.clone());
    options.att_mtu = mtu;
    let listener = TcpListener::bind(listen).await?;
    say(&format!("listening on {}", listener.local_addr()?));
    let machine = Arc::new(Mutex::new(machine));
    tokio::spawn(read_commands(machine.clone(), clock));
    let print = Arc::new(|event: &MachineEvent| say(&event.to_string()));
    tokio::select! {
        result = serve(listener, machine, options, print) => Ok(result?),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// The engine simulation: one command per stdin line. End of input only ends the commands.
async fn read_commands(machine: Arc<Mutex<Machine>>, clock: Arc<dyn Clock>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut machine = machine.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock.now();
        let result = match line.trim() {
            "" => continue,
            "start" => machine.start_engine(),
            "stop" => machine.stop_engine(now),
            "status" => {
                say(&status(&machine, now));
                continue;
            }
            other => {
                say(&format!("error unknown command {other:?} (start, stop, status)"));
                continue;
            }
        };
        match result {
            Ok(events) => events.iter().for_each(|e| say(&e.to_string())),
            Err(e) => say(&format!("error {e}")),
        }
    }
}

/// `status relay=on engine=stopped session=3 relock_in=118s`
fn status(machine: &Machine, now: time::OffsetDateTime) -> String {
    let relay = machine.relay();
    let mut line = format!(
        "status relay={} engine={}",
        if relay.is_on() { "on" } else { "off" },
        if relay.engine_running() {
            "running"
        } else {
            "stopped"
        },
    );
    if let Some(session) = machine.usage().open_session() {
        line.push_str(&format!(" session={}", session.usage_session));
    }
    if let Some(at) = relay.relock_at() {
        line.push_str(&format!(" relock_in={}s", (at - now).whole_seconds().max(0)));
    }
    line
}

/// One status line, flushed at once so scripts see it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
