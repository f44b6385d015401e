//! Fuzz target: the operator import's XLSX reader (`POST /admin/v1/operators/import/preview`
//! with the spreadsheet content type), through an in-process server: the reader is
//! private to opkey-server.
//!
//! An input whose first byte is even is the uploaded file as it is (the ZIP container
//! and everything below it); an odd first byte wraps the rest in a well-formed workbook
//! ([`opkey_fuzz::xlsx::workbook`]): the bytes before the first NUL are the sheet XML, the
//! bytes after it the shared strings. Invariants as for CSV
//! ([`opkey_fuzz::server::check_preview`]).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opkey_fuzz::server::check_preview;
use opkey_fuzz::xlsx::workbook;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check_preview(XLSX, rest);
    } else {
        let file = match rest.iter().position(|&b| b == 0) {
            Some(at) => workbook(&rest[..at], Some(&rest[at + 1..])),
            None => workbook(rest, None),
        };
        check_preview(XLSX, &file);
    }
});
