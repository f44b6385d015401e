//! Bulk operator import from a CSV or XLSX file: a preview with a per-row report, then
//! an import of the selected valid rows in one transaction.
//!
//! Columns are found by header name (case-insensitive, any order): `name` and `phone`
//! are required, `access_type` is optional. Rows are numbered as a spreadsheet shows
//! them (the header is row 1); empty rows are skipped silently.

use super::invites::{self as invite_flow};
use super::operators::{add_to_organization, view};
use super::{MAX_NAME_CHARS, clean_name};
use crate::app::AppState;
use crate::auth::AccessManager;
use crate::db::operators;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, FileBody};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use calamine::{Reader, Xlsx};
use opkey_protocol::api::{
    ErrorBody, ImportPreview, ImportProblem, ImportReport, ImportRow, ImportedOperator,
};
use opkey_protocol::{AccessType, PhoneNumber};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Cursor;

/// Most operator rows one file may hold.
pub const MAX_ROWS: usize = 10_000;
pub const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// The downloadable template.
pub const TEMPLATE_CSV: &str = "name,phone,access_type\nJane Doe,+45 12 34 56 78,digital-key\n";
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// How many operator ids an SMS failure message lists before summarising.
const LISTED_IDS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

/// Query of the preview endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// `csv` or `xlsx` (any case, whitespace trimmed); otherwise taken from Content-Type or the file's first bytes.
    #[param(
        pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([cC][sS][vV]|[xX][lL][sS][xX])[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub format: Option<String>,
}

/// Query of the import endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `csv` or `xlsx` (any case, whitespace trimmed); otherwise taken from Content-Type or the file's first bytes.
    #[param(
        pattern = r"^[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*([cC][sS][vV]|[xX][lL][sS][xX])[\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub format: Option<String>,
    /// Rows to import, e.g. `2,3,5`; all valid rows when left out. The server also reads
    /// ranges (`4-6`, from ≤ to) and spaces around the numbers.
    #[param(pattern = "^0*[0-9]{1,9}(,0*[0-9]{1,9})*$")]
    pub rows: Option<String>,
    /// Send an SMS invitation to each imported operator.
    pub invite: Option<bool>,
}

/// The non-empty rows of the first sheet: the header and the data rows.
#[derive(Debug, Default)]
struct Sheet {
    header_row: u32,
    header: Vec<String>,
    rows: Vec<(u32, Vec<String>)>,
}

impl Sheet {
    fn push(&mut self, row: u32, cells: Vec<String>) -> Result<(), ApiError> {
        if cells.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        if self.header.is_empty() {
            self.header_row = row;
            self.header = cells;
        } else if self.rows.len() == MAX_ROWS {
            return Err(ApiError::InvalidRequest(format!(
                "the file holds more than {MAX_ROWS} operator rows; split it into smaller files"
            )));
        } else {
            self.rows.push((row, cells));
        }
        Ok(())
    }
}

fn detect_format(query: Option<&str>, headers: &HeaderMap, bytes: &[u8]) -> Result<Format, ApiError> {
    if let Some(format) = query {
        return match format.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            _ => Err(ApiError::field("format", "use csv or xlsx")),
        };
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match content_type.as_deref() {
        Some("text/csv") => Ok(Format::Csv),
        Some(XLSX_CONTENT_TYPE) => Ok(Format::Xlsx),
        _ if bytes.starts_with(ZIP_MAGIC) => Ok(Format::Xlsx),
        _ => Ok(Format::Csv),
    }
}

fn read_csv(bytes: &[u8]) -> Result<Sheet, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ApiError::UnreadableFile(
            "the CSV file is not UTF-8 text: save it as 'CSV UTF-8' (or upload the .xlsx) and try again"
                .to_owned(),
        )
    })?;
    // Spreadsheets in many locales save CSV with semicolons.
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = if !first_line.contains(',') && first_line.contains(';') {
        b';'
    } else if !first_line.contains(',') && first_line.contains('\t') {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut sheet = Sheet::default();
    // Row numbers count the line ends before a record's first byte: "\r\n", "\n" and a lone
    // "\r" (classic Mac CSV) each end a row, as the csv reader reads them. (Its own line
    // count knows only "\n", which gave every row of a "\r" file the same number.) It
    // skips blank lines but reports the position where they began.
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0usize, 1u32);
    for record in reader.records() {
        let record =
            record.map_err(|e| ApiError::UnreadableFile(format!("the CSV file cannot be read: {e}")))?;
        let row = record.position().map_or(0, |p| {
            let from = (p.byte() as usize).max(counted_to);
            let start = from
                + bytes[from..]
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
            for at in counted_to..start {
                if bytes[at] == b'\n' || (bytes[at] == b'\r' && bytes.get(at + 1) != Some(&b'\n')) {
                    line += 1;
                }
            }
            counted_to = start;
            line
        });
        sheet.push(row, record.iter().map(|c| c.trim().to_owned()).collect())?;
    }
    Ok(sheet)
}

/// The widest sheet read: an operator list has a handful of columns.
const MAX_XLSX_COLUMNS: u32 = 256;
/// The most non-empty cells read from one sheet.
const MAX_XLSX_CELLS: usize = MAX_ROWS * 16;

/// Reads the first sheet cell by cell (never as one dense range: a sheet that names cell
/// A1 and cell XFD1048576 would otherwise ask for hundreds of gigabytes), after checking
/// that no cell reference is longer than Excel's largest ([`super::xlsx_refs`]).
fn read_xlsx(bytes: &[u8]) -> Result<Sheet, ApiError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        ApiError::UnreadableFile(format!(
            "the Excel file cannot be read ({e}); save it as .xlsx or CSV and try again"
        ))
    };
    super::xlsx_refs::check(bytes)?;
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let first = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::UnreadableFile("the Excel file has no worksheet".to_owned()))?;
    let mut reader = workbook
        .worksheet_cells_reader(&first)
        .map_err(|e| unreadable(&e))?;
    let mut cells: std::collections::BTreeMap<u32, Vec<(u32, String)>> = Default::default();
    let mut count = 0usize;
    while let Some(cell) = reader.next_cell().map_err(|e| unreadable(&e))? {
        let (row, col) = cell.get_position();
        let text = calamine::Data::from(cell.get_value().clone())
            .to_string()
            .trim()
            .to_owned();
        if text.is_empty() {
            continue;
        }
        if col >= MAX_XLSX_COLUMNS {
            return Err(ApiError::InvalidRequest(format!(
                "the sheet has a value in column {} (row {}): operator lists use the first columns only; \
                 remove what is far to the right",
                col + 1,
                u64::from(row) + 1
            )));
        }
        count += 1;
        if count > MAX_XLSX_CELLS {
            return Err(ApiError::InvalidRequest(format!(
                "the sheet holds more than {MAX_XLSX_CELLS} filled cells; split it into smaller files"
            )));
        }
        cells.entry(row).or_default().push((col, text));
    }
    let mut sheet = Sheet::default();
    for (row, values) in cells {
        let width = values.iter().map(|(col, _)| *col as usize + 1).max().unwrap_or(0);
        let mut line = vec![String::new(); width];
        for (col, text) in values {
            line[col as usize] = text;
        }
        sheet.push(row.saturating_add(1), line)?;
    }
    Ok(sheet)
}

fn read_file(format: Option<&str>, headers: &HeaderMap, bytes: &[u8]) -> Result<Sheet, ApiError> {
    match detect_format(format, headers, bytes)? {
        Format::Csv => read_csv(bytes),
        Format::Xlsx => read_xlsx(bytes),
    }
}

/// One data row after validation.
#[derive(Debug)]
struct CheckedRow {
    row: u32,
    name: String,
    phone_text: String,
    phone: Option<PhoneNumber>,
    access_type: Option<AccessType>,
    problems: Vec<ImportProblem>,
}

impl CheckedRow {
    fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    fn report(&self) -> ImportRow {
        ImportRow {
            row: self.row,
            name: self.name.clone(),
            phone: self
                .phone
                .as_ref()
                .map_or_else(|| self.phone_text.clone(), |p| p.as_str().to_owned()),
            access_type: self.access_type,
            valid: self.is_valid(),
        }
    }
}

#[derive(Debug, Default)]
struct Checked {
    header_problems: Vec<ImportProblem>,
    rows: Vec<CheckedRow>,
}

fn problem(row: u32, field: &str, message: impl Into<String>) -> ImportProblem {
    ImportProblem {
        row,
        field: field.to_owned(),
        message: message.into(),
    }
}

fn column_key(header: &str) -> String {
    header.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Validates every row; `in_organization` holds the E.164 phones already operators in
/// this organization.
fn check(sheet: &Sheet, in_organization: &HashSet<String>) -> Checked {
    let mut checked = Checked::default();
    if sheet.header.is_empty() {
        checked.header_problems.push(problem(
            1,
            "header",
            "the file is empty: row 1 must name the columns name, phone and access_type",
        ));
        return checked;
    }
    let column = |name: &str| sheet.header.iter().position(|h| column_key(h) == name);
    let (name_col, phone_col, access_col) = (column("name"), column("phone"), column("access_type"));
    for (wanted, found) in [("name", name_col), ("phone", phone_col)] {
        if found.is_none() {
            checked.header_problems.push(problem(
                sheet.header_row,
                wanted,
                format!(
                    "the header row has no '{wanted}' column (found: {}); name the columns name, phone and access_type",
                    sheet.header.join(", ")
                ),
            ));
        }
    }
    let (Some(name_col), Some(phone_col)) = (name_col, phone_col) else {
        return checked;
    };
    let cell = |cells: &[String], col: usize| cells.get(col).cloned().unwrap_or_default();
    let mut first_row_of_phone: HashMap<String, u32> = HashMap::new();
    for (row, cells) in &sheet.rows {
        let row = *row;
        let mut problems = Vec::new();
        let raw_name = cell(cells, name_col);
        let name = match clean_name("name", &raw_name) {
            Ok(name) => name,
            Err(_) if raw_name.trim().is_empty() => {
                problems.push(problem(row, "name", "the name is empty"));
                String::new()
            }
            Err(_) => {
                problems.push(problem(
                    row,
                    "name",
                    format!("the name is longer than {MAX_NAME_CHARS} characters"),
                ));
                raw_name.trim().to_owned()
            }
        };
        let phone_text = cell(cells, phone_col);
        let phone = match PhoneNumber::parse(&phone_text) {
            Ok(phone) => {
                if in_organization.contains(phone.as_str()) {
                    problems.push(problem(
                        row,
                        "phone",
                        format!("{phone} is already an operator in this organization"),
                    ));
                } else if let Some(first) = first_row_of_phone.get(phone.as_str()) {
                    problems.push(problem(
                        row,
                        "phone",
                        format!("{phone} is also on row {first}; each operator appears once"),
                    ));
                } else {
                    first_row_of_phone.insert(phone.as_str().to_owned(), row);
                }
                Some(phone)
            }
            Err(e) => {
                problems.push(problem(row, "phone", e.to_string()));
                None
            }
        };
        let access_text = access_col.map(|c| cell(cells, c)).unwrap_or_default();
        let access_type = if access_text.is_empty() {
            None
        } else {
            match access_text.parse::<AccessType>() {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(problem(row, "access_type", e.to_string()));
                    None
                }
            }
        };
        checked.rows.push(CheckedRow {
            row,
            name,
            phone_text,
            phone,
            access_type,
            problems,
        });
    }
    checked
}

/// Parses `2,4-6` into row numbers.
fn parse_selection(text: &str) -> Result<BTreeSet<u32>, ApiError> {
    let bad = || ApiError::field("rows", format!("'{text}' is not a row list like 2,4-6"));
    let mut rows = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (from, to) = (from.map_err(|_| bad())?, to.map_err(|_| bad())?);
        if from > to || (to - from) as usize > MAX_ROWS {
            return Err(bad());
        }
        rows.extend(from..=to);
        if rows.len() > MAX_ROWS + 1 {
            return Err(ApiError::field(
                "rows",
                format!("selects more rows than a file may hold ({MAX_ROWS})"),
            ));
        }
    }
    if rows.is_empty() {
        return Err(ApiError::field(
            "rows",
            "select at least one row, e.g. rows=2,4-6",
        ));
    }
    Ok(rows)
}

/// Checks an import file without changing anything.
#[utoipa::path(
    post, path = "/admin/v1/operators/import/preview", tag = "operators", security(("admin_token" = [])),
    params(PreviewQuery),
    request_body(description = "the CSV or XLSX file", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses(
        (status = 200, body = ImportPreview), (status = 400, body = ErrorBody, description = "unreadable_file or invalid_request"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiQuery(query): ApiQuery<PreviewQuery>,
    headers: HeaderMap,
    FileBody(bytes): FileBody,
) -> ApiResult<Json<ImportPreview>> {
    let sheet = tokio::task::spawn_blocking(move || read_file(query.format.as_deref(), &headers, &bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("import task failed: {e}")))??;
    let in_org = state
        .db
        .read(move |conn| Ok(operators::phones_in_org(conn, caller.organization_id())?))
        .await?;
    let checked = check(&sheet, &in_org);
    let mut problems = checked.header_problems;
    problems.extend(checked.rows.iter().flat_map(|r| r.problems.iter().cloned()));
    Ok(Json(ImportPreview {
        rows: checked.rows.iter().map(CheckedRow::report).collect(),
        problems,
    }))
}

/// Imports the selected valid rows (all valid rows without `rows`) in one transaction.
#[utoipa::path(
    post, path = "/admin/v1/operators/import", tag = "operators", security(("admin_token" = [])),
    params(ImportQuery),
    request_body(description = "the CSV or XLSX file", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses(
        (status = 200, body = ImportReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "imported, but some invitations were not sent")
    )
)]
pub async fn import(
    State(state): State<AppState>,
    AccessManager(caller): AccessManager,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    FileBody(bytes): FileBody,
) -> ApiResult<Json<ImportReport>> {
    let selection = query.rows.as_deref().map(parse_selection).transpose()?;
    let send_invites = query.invite.unwrap_or(false);
    let sheet = tokio::task::spawn_blocking(move || read_file(query.format.as_deref(), &headers, &bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("import task failed: {e}")))??;
    let now = state.now();
    let (rng, ttl, who) = (state.rng.clone(), state.invite_ttl, caller.clone());
    let secrets = state.secrets.clone();
    let (mut report, issued) = state
        .db
        .write(move |tx| {
            let org_id = who.organization_id();
            let checked = check(&sheet, &operators::phones_in_org(tx, org_id)?);
            let mut added = Vec::new();
            let mut issued = Vec::new();
            let mut skipped = checked.header_problems;
            for row in checked.rows {
                if selection.as_ref().is_some_and(|s| !s.contains(&row.row)) {
                    continue;
                }
                match (row.is_valid(), row.phone) {
                    (true, Some(phone)) => {
                        let op =
                            add_to_organization(tx, &rng, org_id, row.name, phone, row.access_type, now)?;
                        if send_invites {
                            issued.push(invite_flow::issue(
                                tx,
                                &rng,
                                &secrets,
                                &op,
                                &who.organization,
                                ttl,
                                now,
                            )?);
                        }
                        added.push((row.row, op));
                    }
                    _ => skipped.extend(row.problems),
                }
            }
            if let Some(selection) = &selection {
                let present: HashSet<u32> = sheet.rows.iter().map(|(r, _)| *r).collect();
                for &row in selection.iter().filter(|r| !present.contains(r)) {
                    let message = if row == sheet.header_row.max(1) {
                        format!("row {row} is the header")
                    } else {
                        format!("row {row} holds no operator in this file")
                    };
                    skipped.push(problem(row, "row", message));
                }
            }
            skipped.sort_by_key(|p| p.row);
            let imported = added
                .into_iter()
                .map(|(row, op)| {
                    Ok(ImportedOperator {
                        row,
                        operator: view(tx, op, &who, now)?,
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((ImportReport { imported, skipped }, issued))
        })
        .await?;
    tracing::info!(
        organization_id = %caller.organization.id,
        imported = report.imported.len(),
        skipped = report.skipped.len(),
        "operators imported"
    );
    for (index, invite) in issued.iter().enumerate() {
        match invite_flow::deliver(&state, invite).await {
            Ok(sms_id) => {
                if let Some(entry) = report
                    .imported
                    .iter_mut()
                    .find(|e| e.operator.operator.id == invite.operator.id)
                    && let Some(summary) = entry.operator.invite.as_mut()
                {
                    summary.sms_id = Some(sms_id);
                }
            }
            Err(error) => {
                let unsent: Vec<&str> = issued[index..].iter().map(|i| i.operator.id.as_str()).collect();
                let mut listed = unsent
                    .iter()
                    .take(LISTED_IDS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                if unsent.len() > LISTED_IDS {
                    listed.push_str(&format!(" and {} more", unsent.len() - LISTED_IDS));
                }
                tracing::warn!(%error, unsent = unsent.len(), "import invitations failed");
                return Err(ApiError::SmsFailed(format!(
                    "the import is saved ({} operators), but the SMS invitation could not be sent to {} of \
                     them: {error}; re-send each with POST /admin/v1/operators/{{id}}/invite: {listed}",
                    report.imported.len(),
                    unsent.len()
                )));
            }
        }
    }
    Ok(Json(report))
}

/// A CSV template with the expected header and one example row.
#[utoipa::path(
    get, path = "/admin/v1/operators/import/template.csv", tag = "operators", security(("admin_token" = [])),
    responses((status = 200, body = String, content_type = "text/csv"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn template(AccessManager(_caller): AccessManager) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"operators-template.csv\"",
            ),
        ],
        TEMPLATE_CSV,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(csv: &str) -> Sheet {
        read_csv(csv.as_bytes()).unwrap()
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_case() {
        let s = sheet("Phone,Access Type,NAME\n+4512345678,Digital Key,Ann\n");
        let checked = check(&s, &HashSet::new());
        assert!(checked.header_problems.is_empty());
        let row = &checked.rows[0];
        assert_eq!((row.row, row.name.as_str()), (2, "Ann"));
        assert_eq!(row.access_type, Some(AccessType::DigitalKey));
        assert!(row.is_valid());
    }

    #[test]
    fn blank_lines_are_skipped_but_keep_spreadsheet_row_numbers() {
        let s = sheet("name,phone\n\nAnn,+4512345678\n,,\nBob,+4512345679\n");
        let rows: Vec<u32> = s.rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, vec![3, 5]);
    }

    /// Found by the import_csv fuzz target (fuzz/): a lone "\r" ends a CSV record but was
    /// not counted as a row, so rows shared numbers and `rows=` selected several at once.
    #[test]
    fn classic_mac_and_mixed_line_ends_give_each_row_its_own_number() {
        let s = sheet("name,phone\rAnn,+4512345678\rBob,+4512345679\r");
        assert_eq!(s.header_row, 1);
        let rows: Vec<u32> = s.rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, vec![2, 3]);
        let s = sheet("name;phone\r\nBob;12345;\r4An\n;n+5123456\r\n\r\rCid;+4512345670\n");
        let rows: Vec<u32> = s.rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, vec![2, 3, 4, 7]);
    }

    #[test]
    fn semicolon_csv_from_a_european_spreadsheet_is_read() {
        let s = sheet("name;phone\nAnn;+45 12 34 56 78\n");
        let checked = check(&s, &HashSet::new());
        assert_eq!(checked.rows[0].phone.as_ref().unwrap().as_str(), "+4512345678");
    }

    #[test]
    fn a_missing_column_is_reported_on_the_header_row() {
        let s = sheet("name,mobile\nAnn,+4512345678\n");
        let checked = check(&s, &HashSet::new());
        assert_eq!(checked.header_problems.len(), 1);
        assert_eq!(checked.header_problems[0].row, 1);
        assert_eq!(checked.header_problems[0].field, "phone");
        assert!(checked.rows.is_empty());
    }

    #[test]
    fn row_selections_accept_lists_and_ranges() {
        let rows = parse_selection("2, 4-6,9").unwrap();
        assert_eq!(rows.into_iter().collect::<Vec<_>>(), vec![2, 4, 5, 6, 9]);
        assert!(parse_selection("6-4").is_err());
        assert!(parse_selection("x").is_err());
        assert!(parse_selection("2-4000000000").is_err());
    }

    #[test]
    fn non_utf8_csv_is_unreadable() {
        assert!(matches!(
            read_csv(b"name,phone\nJos\xe9,+4512345678\n"),
            Err(ApiError::UnreadableFile(_))
        ));
    }
}
