//! `opkey-machine`: the simulated telematics unit as a process.
//!
//! - `keygen --key FILE`: make the machine key; print its public key for registration.
//! - `run --provision FILE --key FILE --state FILE --listen ADDR [--server URL]
//!   [--report-every SECS]`: serve the local socket transport; print `listening on ADDR`
//!   first, then one status line per event. Lines on stdin drive the simulated engine:
//!   `start`, `stop`, `status`. With a server URL (the flag, or the bundle's `server_url`)
//!   closed usage sessions are reported every SECS seconds and once more on SIGTERM or
//!   Ctrl-C before exiting; a failed report is logged on stderr and retried.
//!   `--keypad-listen ADDR` also serves the keypad and card reader line protocol (print
//!   `keypad listening on ADDR` second); with a server URL the keypad table is refreshed
//!   every `--keypad-refresh-every` seconds.
//! - `keypad --connect ADDR ENTRY`: send one keypad line (digits or `card:ID`), print the
//!   JSON answer; exit 0 accepted, 5 refused, 4 cannot connect.

use clap::{Parser, Subcommand};
use opkey_machine::refresh::{DEFAULT_KEYPAD_REFRESH_EVERY, KeypadRefresher, Refreshed};
use opkey_machine::report::{DEFAULT_REPORT_EVERY, Delivered, ReportError, Reporter};
use opkey_machine::socket::{ServeOptions, serve, serve_keypad};
use opkey_machine::{KeypadOutcome, TableUpdate};
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
        /// Serve the simulated keypad and card reader (line protocol) on this address.
        #[arg(long, value_name = "ADDR")]
        keypad_listen: Option<String>,
        /// Seconds between keypad table refreshes (with a server URL and a keypad).
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_KEYPAD_REFRESH_EVERY.as_secs(),
              value_parser = clap::value_parser!(u64).range(1..))]
        keypad_refresh_every: u64,
    },
    /// Type one entry on a running machine's keypad (or present a card: `card:ID`) and
    /// print the answer. Exit 0 accepted, 5 refused, 4 cannot connect.
    Keypad {
        /// The address `run --keypad-listen` serves.
        #[arg(long, value_name = "ADDR")]
        connect: String,
        /// Typed digits (e.g. 123456789) or card:CARD_ID.
        entry: String,
    },
}

/// Exit status of `keypad` when the machine refused the entry.
const EXIT_REFUSED: u8 = 5;
/// Exit status of `keypad` when the machine cannot be reached.
const EXIT_UNREACHABLE: u8 = 4;

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
    #[error("cannot reach the keypad at {addr}: {source}")]
    KeypadUnreachable { addr: String, source: std::io::Error },
    #[error("the keypad's answer is not a keypad answer")]
    BadKeypadAnswer,
    #[error("refused")]
    Refused,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Refused) => ExitCode::from(EXIT_REFUSED),
        Err(e) => {
            eprintln!("opkey-machine: {e}");
            match e {
                CliError::KeypadUnreachable { .. } => ExitCode::from(EXIT_UNREACHABLE),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Keypad { connect, entry } => keypad_client(&connect, &entry),
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
            keypad_listen,
            keypad_refresh_every,
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
            // A machine with a keypad: one in the bundle, one held, or one being served.
            let has_keypad = provisioning.keypad.is_some()
                || machine.keypad_table_version() > 0
                || keypad_listen.is_some();
            let machine = Arc::new(Mutex::new(machine));
            let (reporter, refresher) = match server {
                None => (None, None),
                Some(url) => {
                    let pkcs8 = read_key_file(&key)?;
                    let reporter = Reporter::new(machine.clone(), &pkcs8, &url, clock.clone())?;
                    let refresher = has_keypad
                        .then(|| KeypadRefresher::new(machine.clone(), &pkcs8, &url, clock.clone()))
                        .transpose()?;
                    (
                        Some((reporter, Duration::from_secs(report_every))),
                        refresher.map(|r| (r, Duration::from_secs(keypad_refresh_every))),
                    )
                }
            };
            runtime.block_on(run_machine(
                machine,
                clock,
                &listen,
                mtu,
                reporter,
                keypad_listen.as_deref(),
                refresher,
            ))
        }
    }
}

/// Sends one line to a keypad socket and prints the one-line answer.
fn keypad_client(addr: &str, entry: &str) -> Result<(), CliError> {
    use std::io::{BufRead, BufReader};
    let unreachable = |source| CliError::KeypadUnreachable {
        addr: addr.to_owned(),
        source,
    };
    let mut stream = std::net::TcpStream::connect(addr).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(unreachable)?;
    let mut line = zeroize::Zeroizing::new(entry.trim().to_owned());
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(unreachable)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(unreachable)?;
    let value: serde_json::Value =
        serde_json::from_str(answer.trim()).map_err(|_| CliError::BadKeypadAnswer)?;
    println!("{}", answer.trim());
    match value.get("accepted").and_then(serde_json::Value::as_bool) {
        Some(true) => Ok(()),
        Some(false) => Err(CliError::Refused),
        None => Err(CliError::BadKeypadAnswer),
    }
}

async fn run_machine(
    machine: Arc<Mutex<Machine>>,
    clock: Arc<dyn Clock>,
    listen: &str,
    mtu: u16,
    reporter: Option<(Reporter, Duration)>,
    keypad_listen: Option<&str>,
    refresher: Option<(KeypadRefresher, Duration)>,
) -> Result<(), CliError> {
    let mut options = ServeOptions::new(clock.clone());
    options.att_mtu = mtu;
    let listener = TcpListener::bind(listen).await?;
    say(&format!("listening on {}", listener.local_addr()?));
    let print = Arc::new(|event: &MachineEvent| say(&event.to_string()));
    let keypad = match keypad_listen {
        None => None,
        Some(addr) => {
            let keypad_listener = TcpListener::bind(addr).await?;
            say(&format!("keypad listening on {}", keypad_listener.local_addr()?));
            Some(tokio::spawn(serve_keypad(
                keypad_listener,
                machine.clone(),
                clock.clone(),
                print.clone(),
                Arc::new(|outcome: &KeypadOutcome| say(&outcome.to_string())),
            )))
        }
    };
    let refresher = refresher
        .map(|(refresher, every)| tokio::spawn(async move { refresher.run(every, log_refresh).await }));
    tokio::spawn(read_commands(machine.clone(), clock));
    let reporter = reporter.map(|(reporter, every)| {
        let reporter = Arc::new(reporter);
        let periodic = tokio::spawn({
            let reporter = reporter.clone();
            async move { reporter.run(every, log_report).await }
        });
        (reporter, periodic)
    });
    let result = tokio::select! {
        result = serve(listener, machine, options, print) => result.map_err(CliError::from),
        () = stop_signal() => Ok(()),
    };
    if let Some(keypad) = keypad {
        keypad.abort();
    }
    if let Some(refresher) = refresher {
        refresher.abort();
    }
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

/// `keypad table version=4` on stdout when a newer table was kept; failures on stderr (the
/// table held stays and the refresh is retried).
fn log_refresh(outcome: Result<Refreshed, ReportError>) {
    match outcome {
        Ok(Refreshed::Table(TableUpdate::Replaced { version })) => {
            say(&format!("keypad table version={version}"));
        }
        Ok(Refreshed::Table(TableUpdate::Ignored { offered, held })) => {
            eprintln!("keypad refresh: ignored table version {offered} (holding {held})");
        }
        Ok(Refreshed::Unchanged { .. }) => {}
        Err(e) => eprintln!("keypad refresh failed: {e}"),
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
    if let Some(retry_after) = machine.keypad_locked_out_for(now) {
        line.push_str(&format!(" keypad_locked_for={retry_after}s"));
    }
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
