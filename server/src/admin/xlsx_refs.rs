//! Checks the cell references of an uploaded `.xlsx` before the spreadsheet reader sees
//! them.
//!
//! A worksheet names its cells by reference (`<c r="B7">`, `<dimension ref="A1:C40"/>`).
//! Excel's largest is `XFD1048576`: at most 3 column letters and 7 row digits. The reader
//! (calamine 0.32) adds up longer references without checking, so a hand-made file with
//! hundreds of column letters wraps its arithmetic (a panic where overflow checks are on,
//! a wrong cell where they are off; found by the `import_xlsx` fuzz target). This module
//! refuses such a file first: it unpacks every part of the archive as a stream and looks
//! at the value of every `r` and `ref` attribute inside a tag.

use crate::error::ApiError;
use std::io::{Cursor, Read};

/// Column letters in the largest reference Excel writes (`XFD`).
const MAX_COLUMN_LETTERS: usize = 3;
/// Row digits in the largest reference Excel writes (`1048576`).
const MAX_ROW_DIGITS: usize = 7;
/// The most bytes the parts of one upload may unpack to, all parts together. An operator
/// list of 10,000 rows is a few MiB of XML; more is a ZIP bomb.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;

/// Refuses the file when a part holds a cell reference longer than Excel's largest, or
/// when the parts unpack to more than [`MAX_UNPACKED_BYTES`]. A file that is no readable
/// ZIP passes: the spreadsheet reader reports that in its own words.
pub fn check(bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let mut budget = MAX_UNPACKED_BYTES;
    let mut chunk = vec![0u8; 64 * 1024];
    for index in 0..archive.len() {
        let Ok(mut part) = archive.by_index(index) else {
            continue;
        };
        let name: String = part.name().chars().take(QUOTED_CHARS * 4).collect();
        let mut scanner = Scanner::default();
        loop {
            let read = match part.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => read,
                // A damaged part: the reader refuses it (or never opens it).
                Err(_) => break,
            };
            budget = budget.checked_sub(read as u64).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "the Excel file unpacks to more than {} MiB; an operator list is far smaller, \
                     save it again as .xlsx or CSV",
                    MAX_UNPACKED_BYTES / (1024 * 1024)
                ))
            })?;
            if let Some(reference) = scanner.feed(&chunk[..read]) {
                return Err(ApiError::InvalidRequest(format!(
                    "the Excel file names a cell \"{reference}\" in {name}, beyond the largest \
                     a sheet has (XFD1048576); save it again from a spreadsheet program"
                )));
            }
        }
    }
    Ok(())
}

/// How much of a bad reference an error quotes.
const QUOTED_CHARS: usize = 24;

/// Where the scanner is in the XML text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between tags.
    #[default]
    Text,
    /// Inside `<...>`, outside any quoted value; `name` is the attribute name being read.
    Tag,
    /// After a watched attribute name, before its `=`.
    AfterName,
    /// After a watched attribute's `=`, before its opening quote.
    AfterEquals,
    /// Inside a quoted attribute value; `watched` when it is an `r` or `ref` value.
    Value { quote: u8, watched: bool },
}

/// A byte-at-a-time reader of XML that keeps only its state between chunks, so a part is
/// checked in constant memory however large it is.
#[derive(Debug, Default)]
struct Scanner {
    state: State,
    /// The current attribute name while it is short enough to be `r` or `ref`.
    name: Vec<u8>,
    /// Whether the current name token ran past three bytes.
    name_too_long: bool,
    /// Whether the previous byte in the tag ended a token (space, quote): a name starts.
    at_token_start: bool,
    /// Letters and digits of the current run inside a watched value.
    letters: usize,
    digits: usize,
    /// The start of the watched value, for the error message.
    quoted: Vec<u8>,
}

impl Scanner {
    /// Reads `bytes`; returns the start of the first reference that is too long.
    fn feed(&mut self, bytes: &[u8]) -> Option<String> {
        for &byte in bytes {
            if self.step(byte) {
                return Some(String::from_utf8_lossy(&self.quoted).into_owned());
            }
        }
        None
    }

    /// One byte; true when it makes a watched value too long.
    fn step(&mut self, byte: u8) -> bool {
        match self.state {
            State::Text => {
                if byte == b'<' {
                    self.enter_tag();
                }
            }
            State::Tag => self.in_tag(byte),
            State::AfterName => match byte {
                b'=' => self.state = State::AfterEquals,
                b if b.is_ascii_whitespace() => {}
                _ => {
                    // A name without a value (not XML, but not ours to judge).
                    self.state = State::Tag;
                    self.in_tag(byte);
                }
            },
            State::AfterEquals => match byte {
                b'"' | b'\'' => self.open_value(byte, true),
                b if b.is_ascii_whitespace() => {}
                _ => {
                    self.state = State::Tag;
                    self.in_tag(byte);
                }
            },
            State::Value { quote, watched } => {
                if byte == quote {
                    self.state = State::Tag;
                    self.at_token_start = true;
                } else if watched {
                    if self.quoted.len() < QUOTED_CHARS {
                        self.quoted.push(byte);
                    }
                    if byte.is_ascii_alphabetic() {
                        self.letters += 1;
                        self.digits = 0;
                    } else if byte.is_ascii_digit() {
                        self.digits += 1;
                        self.letters = 0;
                    } else {
                        self.letters = 0;
                        self.digits = 0;
                    }
                    return self.letters > MAX_COLUMN_LETTERS || self.digits > MAX_ROW_DIGITS;
                }
            }
        }
        false
    }

    fn enter_tag(&mut self) {
        self.state = State::Tag;
        // The element name comes first; it is never an attribute.
        self.at_token_start = false;
        self.name.clear();
        self.name_too_long = true;
    }

    fn in_tag(&mut self, byte: u8) {
        match byte {
            b'>' => self.state = State::Text,
            b'"' | b'\'' => self.open_value(byte, false),
            b'=' => {
                self.end_name();
                if self.state == State::AfterName {
                    self.state = State::AfterEquals;
                }
            }
            b if b.is_ascii_whitespace() || b == b'/' => {
                self.end_name();
                if self.state != State::AfterName {
                    self.at_token_start = true;
                }
            }
            _ => {
                if self.at_token_start {
                    self.at_token_start = false;
                    self.name.clear();
                    self.name_too_long = false;
                }
                if self.name.len() < 3 {
                    self.name.push(byte);
                } else {
                    self.name_too_long = true;
                }
            }
        }
    }

    /// Ends the current attribute name: a watched one waits for its `=`.
    fn end_name(&mut self) {
        let watched = !self.name_too_long && matches!(self.name.as_slice(), b"r" | b"ref");
        self.name.clear();
        self.name_too_long = true;
        if watched {
            self.state = State::AfterName;
        }
    }

    fn open_value(&mut self, quote: u8, watched: bool) {
        self.state = State::Value { quote, watched };
        self.letters = 0;
        self.digits = 0;
        self.quoted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_bad(xml: &str) -> Option<String> {
        Scanner::default().feed(xml.as_bytes())
    }

    #[test]
    fn excel_sized_references_pass() {
        let xml = r#"<worksheet><dimension ref="A1:XFD1048576"/><sheetData>
            <row r="1048576" spans="1:3"><c r="XFD1048576" t="s"><v>0</v></c></row>
            </sheetData><mergeCells><mergeCell ref = 'A1:B2'/></mergeCells></worksheet>"#;
        assert_eq!(first_bad(xml), None);
    }

    #[test]
    fn a_reference_with_four_column_letters_or_eight_row_digits_is_refused() {
        assert_eq!(first_bad(r#"<c r="AAAA1"/>"#).as_deref(), Some("AAAA"));
        assert_eq!(first_bad(r#"<row r="12345678">"#).as_deref(), Some("12345678"));
        assert_eq!(
            first_bad(r#"<dimension ref="A1:B123456789"/>"#).as_deref(),
            Some("A1:B12345678")
        );
        assert_eq!(first_bad("<c\n\tr\n=\n'ZZZZ9'/>").as_deref(), Some("ZZZZ"));
    }

    #[test]
    fn only_r_and_ref_attributes_inside_tags_are_read() {
        // Other attributes, element names and text may be as long as they like.
        let xml = r#"<r spans="1:123456789" sqref="AAAAAA1" href="ZZZZZZZZ" ar="ABCDEFG">
            r="AAAAAAAA1" <ref>ref="99999999999"</ref><c t="inlineStr" r="B2"/></r>"#;
        assert_eq!(first_bad(xml), None);
    }

    #[test]
    fn a_reference_split_across_chunks_is_still_seen() {
        let xml = br#"<c r="ABCD1"/>"#;
        for cut in 0..xml.len() {
            let mut scanner = Scanner::default();
            let found = scanner.feed(&xml[..cut]).or_else(|| scanner.feed(&xml[cut..]));
            assert_eq!(found.as_deref(), Some("ABCD"), "cut at {cut}");
        }
    }

    #[test]
    fn a_file_that_is_no_zip_is_left_to_the_reader() {
        assert!(check(b"name,phone\n").is_ok());
        assert!(check(b"PK\x03\x04 broken").is_ok());
    }
}
