//! `opkey unlock` and `opkey lock`: the operator's tap on Unlock (or Lock). Picks the
//! machine by id or by name among the keys on this phone, reaches it over the chosen
//! radio — local sockets of `opkey-machine run` (`--via`), or Bluetooth (`--ble`) — and
//! says what the machine did. The checks, the exchange and the usage event are the core's.

use crate::error::CliError;
use crate::home::Home;
use crate::output::print_json;
use opkey_core::{
    BleTransport, CancelToken, MachineCommand, MachineView, OpKey, SocketTransport, UnlockOutcome,
    UnlockReport,
};
use std::sync::Arc;

/// How to reach the machine, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// `host:port` of `opkey-machine run --listen` (added to the remembered ones).
    pub via: Vec<String>,
    /// The desktop's Bluetooth adapter.
    pub ble: bool,
}

pub async fn run(
    home: &Home,
    machine: &str,
    command: MachineCommand,
    reach: Reach,
    json: bool,
) -> Result<(), CliError> {
    let mut home = Home::open(&home.dir)?;
    let transport = transport(&mut home, reach).await?;
    let core = home.open_core()?;
    let target = resolve(&core, machine)?;

    // Ctrl-C while looking for or talking to the machine ends the attempt cleanly (the
    // link is closed and the attempt recorded).
    let cancel = CancelToken::new();
    let on_interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let result = match command {
        MachineCommand::Unlock => core.unlock(&target.id, transport, &cancel).await,
        MachineCommand::Lock => core.lock(&target.id, transport, &cancel).await,
    };
    on_interrupt.abort();
    let report = result?;
    if json {
        print_json(&report);
    }
    match report.outcome {
        UnlockOutcome::Denied { reason } => Err(CliError::Refused {
            machine: target.name,
            reason,
        }),
        UnlockOutcome::Unlocked { relock_after_s, .. } => {
            if !json {
                println!(
                    "Unlocked {}: start the engine within {relock_after_s} s",
                    target.name
                );
                println!("  {}", exchange_summary(&report));
            }
            Ok(())
        }
        UnlockOutcome::Locked { .. } => {
            if !json {
                println!("Locked {}", target.name);
                println!("  {}", exchange_summary(&report));
            }
            Ok(())
        }
    }
}

/// `cold (full grant): 412 B sent, 197 B received, 1 round trip, 35 ms`
pub fn exchange_summary(report: &UnlockReport) -> String {
    format!(
        "{}: {} B sent, {} B received, {} round trip{}, {} ms",
        if report.full_grant_sent {
            "cold (full grant)"
        } else {
            "warm (key id only)"
        },
        report.bytes_sent,
        report.bytes_received,
        report.round_trips,
        if report.round_trips == 1 { "" } else { "s" },
        report.elapsed_ms
    )
}

/// The machine an attempt is for: its id, and the name to show.
struct Target {
    id: String,
    name: String,
}

impl Target {
    fn of(m: &MachineView) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
        }
    }
}

/// The machine as the operator named it: its id, or a name that only one machine of the
/// phone's keys carries (case-insensitive). Anything else goes to the core as an id, which
/// then says no key opens it.
fn resolve(core: &OpKey, given: &str) -> Result<Target, CliError> {
    let mut machines: Vec<MachineView> = Vec::new();
    for key in core.keys()? {
        for m in key.machines {
            if !machines.iter().any(|known| known.id == m.id) {
                machines.push(m);
            }
        }
    }
    if let Some(m) = machines.iter().find(|m| m.id == given) {
        return Ok(Target::of(m));
    }
    let named: Vec<&MachineView> = machines
        .iter()
        .filter(|m| m.name.eq_ignore_ascii_case(given.trim()))
        .collect();
    match named.as_slice() {
        [one] => Ok(Target::of(one)),
        [] => Ok(Target {
            id: given.to_owned(),
            name: given.to_owned(),
        }),
        several => Err(CliError::usage(
            format!("{} machines are called '{given}'", several.len()),
            Some(format!(
                "name it by id: {}",
                several
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        )),
    }
}

/// The radio for this attempt. `--via` addresses are remembered in the settings and tried
/// with the ones remembered before.
async fn transport(home: &mut Home, reach: Reach) -> Result<Arc<dyn BleTransport>, CliError> {
    if reach.ble {
        if !reach.via.is_empty() {
            return Err(CliError::usage(
                "--ble and --via exclude each other",
                Some(
                    "use --via ADDR for a local `opkey-machine run`, --ble for a machine in radio range"
                        .to_owned(),
                ),
            ));
        }
        return bluetooth().await;
    }
    let mut changed = false;
    for address in reach.via {
        let address = address.trim().to_owned();
        if address.is_empty() {
            continue;
        }
        if let Some(at) = home.settings.machine_addresses.iter().position(|a| *a == address) {
            home.settings.machine_addresses.remove(at);
        } else {
            changed = true;
        }
        // The newest first: it is probed first.
        home.settings.machine_addresses.insert(0, address);
    }
    if changed {
        home.save_settings()?;
    }
    if home.settings.machine_addresses.is_empty() {
        return Err(CliError::usage(
            "no way to reach the machine",
            Some(
                "pass --via HOST:PORT of a running `opkey-machine run --listen` (remembered), or --ble"
                    .to_owned(),
            ),
        ));
    }
    Ok(Arc::new(SocketTransport::new(
        home.settings.machine_addresses.clone(),
    )))
}

/// The computer's Bluetooth adapter (BlueZ on Linux), in builds with the `ble` feature.
#[cfg(feature = "ble")]
async fn bluetooth() -> Result<Arc<dyn BleTransport>, CliError> {
    use opkey_core::{TransportError, UnlockError};
    match opkey_core::unlock::BtleplugTransport::new().await {
        Ok(radio) => Ok(Arc::new(radio)),
        Err(TransportError::BluetoothOff) => Err(UnlockError::BluetoothOff.into()),
        Err(TransportError::PermissionMissing) => Err(UnlockError::PermissionMissing.into()),
        Err(e) => Err(UnlockError::Bluetooth {
            reason: e.to_string(),
        }
        .into()),
    }
}

#[cfg(not(feature = "ble"))]
async fn bluetooth() -> Result<Arc<dyn BleTransport>, CliError> {
    Err(CliError::usage(
        "this build has no Bluetooth support",
        Some(
            "reach a machine's local socket with --via HOST:PORT, or build with `--features ble` \
             (needs libdbus-1-dev)"
                .to_owned(),
        ),
    ))
}
