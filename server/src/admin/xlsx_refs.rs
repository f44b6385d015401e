//! Checks the cell references of an uploaded `.xlsx` before the spreadsheet reader sees
//! them.
//!
//! A worksheet names its cells by reference (`<c r="B7">`, `<dimension ref="A1:C40"/>`).
//! Excel's largest is `XFD1048576`: at most 3 column letters and 7 row digits. The reader
//! (calamine 0.32) adds up longer references without checking, so a hand-made file with
//! hundreds of column letters wraps its arithmetic (a panic where overflow checks are on,
//! a wrong cell where they are off; found by the `import_xlsx` fuzz target). This module
//! refuses such a file first: it unpacks every part of the archive as a stream and reads
//! it with the XML tokenizer calamine uses (quick-xml, the same version and settings), so
//! both see the same tags, and checks the value of every `r` and `ref` attribute.
//! (A first version tokenized the XML itself and was fooled by a processing instruction
//! holding a quote, which quick-xml ends at `?>` regardless: found by the same target.)

use crate::error::ApiError;
use quick_xml::Reader;
use quick_xml::events::Event;
use quick_xml::name::QName;
use std::io::{BufReader, Cursor, Read};

/// Column letters in the largest reference Excel writes (`XFD`).
const MAX_COLUMN_LETTERS: usize = 3;
/// Row digits in the largest reference Excel writes (`1048576`).
const MAX_ROW_DIGITS: usize = 7;
/// The most bytes the parts of one upload may unpack to, all parts together. An operator
/// list of 10,000 rows is a few MiB of XML; more is a ZIP bomb.
pub const MAX_UNPACKED_BYTES: u64 = 256 * 1024 * 1024;
/// How much of a bad reference, or of a part's name, an error quotes.
const QUOTED_CHARS: usize = 40;

/// Refuses the file when a part holds a cell reference longer than Excel's largest, or
/// when the parts unpack to more than [`MAX_UNPACKED_BYTES`]. A file that is no readable
/// ZIP, or a part that is no readable XML, passes: the spreadsheet reader stops at the
/// same place and reports it in its own words.
pub fn check(bytes: &[u8]) -> Result<(), ApiError> {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let mut budget = MAX_UNPACKED_BYTES;
    for index in 0..archive.len() {
        let Ok(part) = archive.by_index(index) else {
            continue;
        };
        let name: String = part.name().chars().take(QUOTED_CHARS).collect();
        let mut reader = Reader::from_reader(BufReader::new(Budgeted {
            inner: part,
            left: budget,
            exceeded: false,
        }));
        let found = first_bad_reference(&mut reader);
        let budgeted = reader.get_ref().get_ref();
        if budgeted.exceeded {
            return Err(ApiError::InvalidRequest(format!(
                "the Excel file unpacks to more than {} MiB; an operator list is far smaller, \
                 save it again as .xlsx or CSV",
                MAX_UNPACKED_BYTES / (1024 * 1024)
            )));
        }
        budget = budgeted.left;
        if let Some(reference) = found {
            return Err(ApiError::InvalidRequest(format!(
                "the Excel file names a cell \"{reference}\" in {name}, beyond the largest a sheet \
                 has (XFD1048576); save it again from a spreadsheet program"
            )));
        }
    }
    Ok(())
}

/// Reads XML events until the end or the first error; returns the first `r` or `ref`
/// value that is longer than a cell reference can be (quoted, shortened).
fn first_bad_reference<R: std::io::BufRead>(reader: &mut Reader<R>) -> Option<String> {
    // calamine's settings (xlsx `xml_reader`): the most lenient, so this check never stops
    // before calamine does.
    let config = reader.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(tag) | Event::Empty(tag)) => {
                for attribute in tag.attributes() {
                    // calamine stops at a malformed attribute too.
                    let Ok(attribute) = attribute else { break };
                    if matches!(attribute.key, QName(b"r") | QName(b"ref")) && too_long(&attribute.value) {
                        let quoted: String = String::from_utf8_lossy(&attribute.value)
                            .chars()
                            .take(QUOTED_CHARS)
                            .collect();
                        return Some(quoted);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Whether `value` has a run of letters or digits longer than a cell reference's.
fn too_long(value: &[u8]) -> bool {
    let (mut letters, mut digits) = (0usize, 0usize);
    for byte in value {
        if byte.is_ascii_alphabetic() {
            (letters, digits) = (letters + 1, 0);
        } else if byte.is_ascii_digit() {
            (letters, digits) = (0, digits + 1);
        } else {
            (letters, digits) = (0, 0);
        }
        if letters > MAX_COLUMN_LETTERS || digits > MAX_ROW_DIGITS {
            return true;
        }
    }
    false
}

/// A part's bytes, counted against what the whole upload may unpack to.
struct Budgeted<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        match self.left.checked_sub(read as u64) {
            Some(left) => {
                self.left = left;
                Ok(read)
            }
            None => {
                self.exceeded = true;
                Err(std::io::Error::other("the upload unpacks to more than allowed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn first_bad(xml: &str) -> Option<String> {
        first_bad_reference(&mut Reader::from_reader(xml.as_bytes()))
    }

    /// A ZIP holding `parts`, stored uncompressed.
    fn zipped(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, data) in parts {
            out.start_file(*name, stored).unwrap();
            out.write_all(data).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn excel_sized_references_pass() {
        let xml = r#"<?xml version="1.0"?><worksheet><dimension ref="A1:XFD1048576"/><sheetData>
            <row r="1048576" spans="1:3"><c r="XFD1048576" t="s"><v>0</v></c></row>
            </sheetData><mergeCells><mergeCell ref = 'A1:B2'/></mergeCells></worksheet>"#;
        assert_eq!(first_bad(xml), None);
    }

    #[test]
    fn a_reference_with_four_column_letters_or_eight_row_digits_is_refused() {
        assert_eq!(first_bad(r#"<c r="AAAA1"/>"#).as_deref(), Some("AAAA1"));
        assert_eq!(first_bad(r#"<row r="12345678">"#).as_deref(), Some("12345678"));
        assert_eq!(
            first_bad(r#"<x><dimension ref="A1:B123456789"/></x>"#).as_deref(),
            Some("A1:B123456789")
        );
        assert_eq!(first_bad("<c\n\tr\n=\n'ZZZZ9'/>").as_deref(), Some("ZZZZ9"));
    }

    #[test]
    fn only_r_and_ref_attributes_of_tags_are_read() {
        // Other attributes, prefixed names, element names and text may be long.
        let xml = r#"<r spans="1:123456789" sqref="AAAAAA1" href="ZZZZZZZZ" x:r="ABCDEFG">
            r="AAAAAAAA1" <ref>ref="99999999999"</ref><!-- <c r="AAAAA1"/> -->
            <![CDATA[<c r="BBBBB1"/>]]><c t="inlineStr" r="B2"/></r>"#;
        assert_eq!(first_bad(xml), None);
    }

    /// Found by the import_xlsx fuzz target against the first version: a quote inside the
    /// XML declaration (which ends at `?>` whatever the quotes) hid a later cell from a
    /// tokenizer that paired the quotes.
    #[test]
    fn a_quote_in_a_processing_instruction_does_not_hide_a_cell() {
        let xml = r#"<?xml version="1.0" standalone="ye?><sheetData><row r="4"><c r="AJJJJJJJJ4"/></row></sheetData>"#;
        assert_eq!(first_bad(xml).as_deref(), Some("AJJJJJJJJ4"));
    }

    #[test]
    fn every_part_is_checked_and_named_in_the_error() {
        let file = zipped(&[
            ("[Content_Types].xml", b"<Types/>"),
            (
                "xl/worksheets/sheet7.xml",
                br#"<worksheet><c r="QQQQQ1"/></worksheet>"#,
            ),
        ]);
        let Err(ApiError::InvalidRequest(message)) = check(&file) else {
            panic!("a long reference passed");
        };
        assert!(
            message.contains("\"QQQQQ1\" in xl/worksheets/sheet7.xml"),
            "{message}"
        );
        let fine = zipped(&[(
            "xl/worksheets/sheet1.xml",
            br#"<worksheet><c r="A1"/></worksheet>"#,
        )]);
        assert!(check(&fine).is_ok());
    }

    #[test]
    fn parts_unpacking_past_the_budget_are_refused() {
        let mut reader = Reader::from_reader(BufReader::new(Budgeted {
            inner: Cursor::new(vec![b' '; 10_000]),
            left: 4_096,
            exceeded: false,
        }));
        assert_eq!(first_bad_reference(&mut reader), None);
        assert!(reader.get_ref().get_ref().exceeded);
    }

    #[test]
    fn a_file_that_is_no_zip_is_left_to_the_reader() {
        assert!(check(b"name,phone\n").is_ok());
        assert!(check(b"PK\x03\x04 broken").is_ok());
    }
}
