//! Fuzz target: the operator import's CSV reader (`POST /admin/v1/operators/import/preview`
//! with `text/csv`), through an in-process server: the reader is private to opkey-server.
//!
//! Invariants ([`opkey_fuzz::server::check_preview`]): the server answers a preview with
//! rows numbered as a spreadsheet shows them, valid exactly when problem-free, valid
//! phones in E.164 and unique; or a typed 400/413. Never a 500 or a dropped connection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::server::check_preview;

fuzz_target!(|data: &[u8]| {
    check_preview("text/csv", data);
});
