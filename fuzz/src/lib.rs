//! # opkey-fuzz
//!
//! What the cargo-fuzz targets in `fuzz_targets/` share (issue 7, "Fuzzing"):
//!
//! - [`Chunks`]: cutting one fuzz input into a sequence of length-prefixed pieces (BLE
//!   fragments, messages);
//! - [`keys`]: P-256 keys made at start-up, so no fuzz input can carry a signature that
//!   verifies under them;
//! - [`server`]: an in-process `opkey-server` on 127.0.0.1 and a tiny HTTP/1.1 client, for
//!   the CSV and XLSX import, which the server only exposes over HTTP;
//! - [`xlsx`]: wrapping fuzzed sheet XML into a well-formed `.xlsx` (a stored ZIP), so the
//!   fuzzer reaches the spreadsheet reader and not only the ZIP checks.
//!
//! Every target checks the decoder's invariants (round trips, bounds, "never verifies",
//! "never opens"), not only that it does not panic.

pub mod keys;
pub mod server;
pub mod xlsx;

/// Cuts an input into pieces: each is one length byte then that many bytes (the last
/// piece is whatever is left when the input ends early).
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
}

impl<'a> Chunks<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let (piece, rest) = tail.split_at(usize::from(len).min(tail.len()));
        self.rest = rest;
        Some(piece)
    }
}

/// A unique scratch directory for this process under the temp dir (scripts/fuzz points
/// TMPDIR at the git-ignored build/fuzz/tmp and removes it after each run).
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("opkey-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the fuzz scratch directory can be created");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_length_prefixed_and_the_last_one_may_be_short() {
        let pieces: Vec<&[u8]> = Chunks::new(&[2, 1, 2, 0, 3, 9]).collect();
        assert_eq!(pieces, vec![&[1u8, 2][..], &[][..], &[9][..]]);
        assert_eq!(Chunks::new(&[]).count(), 0);
    }
}
