//! The operator's side of the CLI: enroll with an invite, sync, and look at keys. Every
//! command here goes through `opkey-core`, exactly as the mobile apps do.

use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, table, when};
use opkey_core::{KeyView, SyncProgress};
use serde_json::json;
use std::io::{IsTerminal, Write};
use url::Url;

pub async fn invite(
    home: &Home,
    link_or_code: &str,
    server: Option<Url>,
    allow_hosts: Vec<String>,
    json: bool,
) -> Result<(), CliError> {
    let mut home = Home::open(&home.dir)?;
    let mut changed = false;
    for host in allow_hosts {
        let host = host.trim().to_ascii_lowercase();
        if !host.is_empty() && !home.settings.allow_hosts.contains(&host) {
            home.settings.allow_hosts.push(host);
            changed = true;
        }
    }
    if server.is_some() && server != home.settings.server {
        home.settings.server = server;
        changed = true;
    }
    if changed {
        home.save_settings()?;
    }
    let core = home.open_core()?;
    // Parse first: a mistyped code or a foreign link is refused without any network.
    core.parse_invite(link_or_code)?;
    let enrollment = core.redeem_invite(link_or_code).await?;
    // The apps sync right after enrolling; so does the CLI, but the enrollment stands
    // even when this first sync fails (`opkey sync` tries again).
    let synced = core.sync().await;
    if json {
        print_json(&json!({
            "phone_id": enrollment.phone_id,
            "operator": enrollment.operator,
            "organizations": enrollment.organizations,
            "server_url": enrollment.server_url,
            "synced": synced.as_ref().ok(),
        }));
    } else {
        let orgs: Vec<&str> = enrollment.organizations.iter().map(|o| o.name.as_str()).collect();
        println!(
            "Enrolled as {} ({}) with {}.",
            enrollment.operator.name,
            enrollment.operator.phone.masked(),
            if orgs.is_empty() {
                "no organization yet".to_owned()
            } else {
                orgs.join(", ")
            }
        );
        match &synced {
            Ok(report) => println!("Synced {} key(s). List them with `opkey keys`.", report.upserted),
            Err(e) => eprintln!("warning: the first sync failed: {e}\nhint: run `opkey sync` when online"),
        }
    }
    Ok(())
}

pub async fn sync(home: &Home, json: bool) -> Result<(), CliError> {
    let core = home.open_core()?;
    let show_progress = !json && std::io::stderr().is_terminal();
    let progress = move |p: SyncProgress| {
        if show_progress {
            let line = match p {
                SyncProgress::Fetching { page, keys_so_far } => {
                    format!("syncing… page {page}, {keys_so_far} change(s) so far")
                }
                SyncProgress::Applying { keys } => format!("saving {keys} change(s)…"),
            };
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    };
    let result = core.sync_with_progress(&progress).await;
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    let report = result?;
    let status = core.status()?;
    if json {
        print_json(&json!({ "report": report, "status": status }));
    } else {
        println!(
            "Synced: {} key(s) new or changed, {} removed. {} key(s) on this phone, {} usable now.",
            report.upserted, report.deleted, status.key_count, status.usable_key_count
        );
        if let Some(warning) = &status.clock_warning {
            println!("warning: {warning}");
        }
    }
    Ok(())
}

pub fn keys(home: &Home, usable_only: bool, json: bool) -> Result<(), CliError> {
    let core = home.open_core()?;
    let keys: Vec<KeyView> = core
        .keys()?
        .into_iter()
        .filter(|k| !usable_only || k.usable)
        .collect();
    if json {
        print_json(&keys);
        return Ok(());
    }
    if keys.is_empty() {
        println!("No keys on this phone. Run `opkey sync`, or ask your fleet admin for access.");
        return Ok(());
    }
    print_keys(&keys);
    Ok(())
}

/// The key table as `opkey keys` prints it.
fn print_keys(keys: &[KeyView]) {
    table(&key_rows(keys));
}

/// The key table's rows, header first.
pub fn key_rows(keys: &[KeyView]) -> Vec<Vec<String>> {
    let mut rows = vec![
        ["KEY", "STATE", "TYPE", "MACHINES", "FROM", "TO", "DESCRIPTION"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for k in keys {
        rows.push(vec![
            k.id.clone(),
            k.state.as_str().to_owned(),
            k.access_type.label().to_owned(),
            machine_names(k),
            when(k.valid_from),
            when(k.valid_to),
            k.description.clone(),
        ]);
    }
    rows
}

pub fn key(home: &Home, id: &str, json: bool) -> Result<(), CliError> {
    let core = home.open_core()?;
    let k = core.key(id)?;
    if json {
        print_json(&k);
        return Ok(());
    }
    println!("{} — {} ({})", k.id, k.access_type.label(), k.state.as_str());
    println!("  organization: {}", k.organization_name);
    println!("  machines:     {}", machine_names(&k));
    println!("  valid:        {} → {}", when(k.valid_from), when(k.valid_to));
    if !k.description.is_empty() {
        println!("  description:  {}", k.description);
    }
    if let Some(card) = &k.card_id {
        println!("  card id:      {card}");
    }
    println!("  personal:     {}", if k.personal { "yes" } else { "no" });
    println!("  version:      {}", k.version);
    println!("  usable now:   {}", if k.usable { "yes" } else { "no" });
    Ok(())
}

pub fn status(home: &Home, json: bool) -> Result<(), CliError> {
    let core = home.open_core()?;
    let status = core.status()?;
    if json {
        print_json(&status);
        return Ok(());
    }
    match &status.operator {
        Some(op) if status.enrolled => println!("Enrolled as {} ({})", op.name, op.phone.masked()),
        Some(op) => println!(
            "Access withdrawn for {} — ask your fleet admin for a new invite",
            op.name
        ),
        None => println!("Not enrolled. Open your SMS invite with `opkey invite LINK_OR_CODE`."),
    }
    if !status.organizations.is_empty() {
        let names: Vec<&str> = status.organizations.iter().map(|o| o.name.as_str()).collect();
        println!("Organizations: {}", names.join(", "));
    }
    if let Some(url) = &status.server_url {
        println!("Server: {url}");
    }
    match status.last_sync_at {
        Some(t) => println!("Last sync: {}", when(t)),
        None => println!("Last sync: never"),
    }
    if let Some(offset) = status.server_offset_ms {
        println!("Phone clock vs server: {:+.1} s", offset as f64 / -1000.0);
    }
    println!(
        "Keys: {} ({} usable now)",
        status.key_count, status.usable_key_count
    );
    if let Some(warning) = &status.clock_warning {
        println!("warning: {warning}");
    }
    Ok(())
}

fn machine_names(k: &KeyView) -> String {
    k.machines
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
