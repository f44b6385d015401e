//! `opkey demo --audit-secrets` end to end: the real binary runs the whole demo with its
//! logs captured at trace level and scans them, its story output and every file it wrote
//! for each secret it used. The audit must pass and must have had something to look for.

use std::process::Command;

const KINDS: [&str; 10] = [
    "admin token",
    "invite token",
    "invite short code",
    "operator access token",
    "phone data key",
    "phone signer private key",
    "machine private key",
    "issuer private key",
    "Rolling PIN seed",
    "Static PIN",
];

#[test]
fn the_demo_leaves_no_secret_in_plaintext_and_the_table_lists_every_kind() {
    let out = Command::new(env!("CARGO_BIN_EXE_opkey"))
        .args(["demo", "--audit-secrets"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("No secret found in plaintext."), "{stdout}");

    let header = stdout
        .lines()
        .position(|l| l.starts_with("SECRET KIND"))
        .expect("the audit table");
    let rows: Vec<&str> = stdout.lines().skip(header + 1).take(KINDS.len()).collect();
    for kind in KINDS {
        let row = rows
            .iter()
            .find(|r| r.starts_with(kind) && r[kind.len()..].starts_with("  "))
            .unwrap_or_else(|| panic!("no row for {kind} in\n{}", rows.join("\n")));
        let cells: Vec<&str> = row[kind.len()..].split_whitespace().collect();
        let count: usize = cells[0].parse().unwrap();
        let places: usize = cells[1].parse().unwrap();
        assert!(count > 0, "{kind}: nothing collected: {row}");
        assert!(places >= 10, "{kind}: too few places scanned: {row}");
        assert_eq!(cells[2..], ["none"], "{kind}: {row}");
    }

    // The places include the logs, the story and the databases with their WAL files.
    let places = stdout
        .lines()
        .find(|l| l.starts_with("places scanned:"))
        .expect("the places line");
    for place in [
        "captured logs",
        "story output",
        "backend.db-wal (backend up)",
        "phone/opkey.db",
    ] {
        assert!(places.contains(place), "{place} not scanned: {places}");
    }
    let census = stdout
        .lines()
        .find(|l| l.starts_with("log lines captured"))
        .expect("the log census");
    for target in ["opkey_core DEBUG", "opkey_server DEBUG", "opkey_server INFO"] {
        assert!(census.contains(target), "{target} not captured: {census}");
    }
    // The invitation is shown with its secrets masked.
    assert!(stdout.contains("/i/•••"), "{stdout}");
}
