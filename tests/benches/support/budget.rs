//! The performance budget's rows (`scripts/bench`): a benchmark that finds
//! `OPKEY_BENCH_ROWS` set appends its headline figures to that file, one tab-separated
//! line each (measure, measured, target, verdict), and `scripts/bench` prints the rows of
//! every benchmark as one table. `OPKEY_BENCH_SHORT=1` asks for fewer samples (the test
//! command's short run); the workload stays the size the targets are stated for.
//!
//! Included by path (`#[path]`) from the benchmarks of several crates.

use std::io::Write as _;

/// Whether this is the short run.
pub fn short() -> bool {
    std::env::var_os("OPKEY_BENCH_SHORT").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `full` samples, or `short` in the short run.
pub fn samples(full: usize, short_run: usize) -> usize {
    if short() { short_run } else { full }
}

/// One figure against its target.
pub struct Row {
    pub measure: String,
    pub measured: String,
    pub target: String,
    /// `None`: the figure has no target (it explains another).
    pub met: Option<bool>,
}

impl Row {
    pub fn new(
        measure: impl Into<String>,
        measured: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Self {
        Self {
            measure: measure.into(),
            measured: measured.into(),
            target: target.into(),
            met: Some(met),
        }
    }
}

/// Appends `rows` to the file `OPKEY_BENCH_ROWS` names, when it does.
pub fn append(rows: &[Row]) {
    let Some(path) = std::env::var_os("OPKEY_BENCH_ROWS") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("the budget rows file opens");
    for row in rows {
        let verdict = match row.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "-",
        };
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        writeln!(
            file,
            "{}\t{}\t{}\t{verdict}",
            clean(&row.measure),
            clean(&row.measured),
            clean(&row.target)
        )
        .expect("the budget rows file takes a line");
    }
}
