//! `opkey-machine`: the simulated telematics unit as a process.
//!
//! - `keygen --key FILE`: make the machine key; print its public key for registration.
//! - `run --provision FILE --key FILE --state FILE --listen ADDR [--server URL]
//!   [--report-every SECS]`: serve the local socket transport; print `listening on ADDR`
//!   first, then one status line per event. Lines on stdin drive the simulated engine:
//!   `start`, `stop`, `status`. With a server URL (the flag, or the bundle's `server_url`)
//!   closed usage sessions are reported every SECS seconds and once more on SIGTERM or
//!   Ctrl-C before exiting; a failed report is logged on stderr and retried.

use clap::{Parser, Subcommand};
use opkey_machine::report::{DEFAULT_REPORT_EVERY, Delivered, ReportError, Reporter};
use opkey_machine::socket::{ServeOptions, serve};
use opkey_machine::{
    Machine, MachineError, MachineEvent, generate_key_file, read_key_file, read_provisioning,
};
use opkey_protocol::{Clock, SystemClock};
use ring::rand::SystemRandom;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use url::Url;

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
        /// The backend to report usage sessions to; overrides the bundle's `server_url`.
        #[arg(long, value_name = "URL")]
        server: Option<Url>,
        /// Seconds between usage reports (with a server URL).
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REPORT_EVERY.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        report_every: u64,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("the bundle's server_url {0:?} is not a URL")]
    BadServerUrl(String),
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
            server,
            report_every,
        } => {
            let provisioning = read_provisioning(&provision)?;
            let server = match server {
                Some(url) => Some(url),
                None => provisioning
                    .server_url
                    .as_deref()
                    .map(|u| Url::parse(u).map_err(|_| CliError::BadServerUrl(u.to_owned())))
                    .transpose()?,
            };
            let machine = Machine::open(&provisioning, &key, &state)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let machine = Arc::new(Mutex::new(machine));
            let reporter = server
                .map(|url| Reporter::new(machine.clone(), &read_key_file(&key)?, &url, clock.clone()))
                .transpose()?
                .map(|r| (r, Duration::from_secs(report_every)));
            runtime.block_on(run_machine(machine, clock, &listen, mtu, reporter))
        }
    }
}

async fn run_machine(
    machine: Arc<Mutex<Machine>>,
    clock: Arc<dyn Clock>,
    listen: &str,
    mtu: u16,
    reporter: Option<(Reporter, Duration)>,
) -> Result<(), CliError> {
    let mut options = ServeOptions::new(clock.clone());
    options.att_mtu = mtu;
    let listener = TcpListener::bind(listen).await?;
    say(&format!("listening on {}", listener.local_addr()?));
    tokio::spawn(read_commands(machine.clone(), clock));
    let reporter = reporter.map(|(reporter, every)| {
        let reporter = Arc::new(reporter);
        let periodic = tokio::spawn({
            let reporter = reporter.clone();
            async move { reporter.run(every, log_report).await }
        });
        (reporter, periodic)
    });
    let print = Arc::new(|event: &MachineEvent| say(&event.to_string()));
    let result = tokio::select! {
        result = serve(listener, machine, options, print) => result.map_err(CliError::from),
        () = stop_signal() => Ok(()),
    };
    if let Some((reporter, periodic)) = reporter {
        // One last report before exiting; what it cannot deliver stays pending on disk.
        periodic.abort();
        match tokio::time::timeout(Duration::from_secs(10), reporter.report()).await {
            Ok(outcome) => log_report(outcome),
            Err(_) => eprintln!("report failed: the backend did not answer within 10 s"),
        }
    }
    result
}

/// `reported sessions=3 accepted=2 updated=0 duplicates=1` on stdout when sessions were
/// delivered; failures on stderr (the sessions stay pending and are retried).
fn log_report(outcome: Result<Delivered, ReportError>) {
    match outcome {
        Ok(d) if d.sessions == 0 => {}
        Ok(d) => say(&format!(
            "reported sessions={} accepted={} updated={} duplicates={}",
            d.sessions, d.accepted, d.updated, d.duplicates
        )),
        Err(e) => eprintln!("report failed: {e}"),
    }
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
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
