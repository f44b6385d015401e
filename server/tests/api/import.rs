use crate::common::*;
use opkey_protocol::AccessType;
use opkey_protocol::api::{ErrorCode, ImportPreview, ImportReport, OperatorView, SmsMessage};
use reqwest::Method;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const MIXED_CSV: &str = "\
name,phone,access_type
Ann,+4512345678,digital-key
,+4512345670,
Bob,12345,
Cid,+45 1234 5678,
Dan,+4512345671,master-key
Eve,+4512345672,Static PIN
Fay,+4512345673,
Gus,+4512345674,
";

async fn upload(server: &TestServer, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = server
        .client
        .post(server.url(&format!("/admin/v1{path}")))
        .bearer_auth(ADMIN_TOKEN)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    server.send(request).await
}

fn problems_by_row(preview: &ImportPreview) -> Vec<(u32, String)> {
    preview
        .problems
        .iter()
        .map(|p| (p.row, p.field.clone()))
        .collect()
}

#[tokio::test]
async fn csv_preview_reports_each_bad_row_and_import_takes_only_the_selected_valid_rows() {
    let server = start().await;
    server.create_operator("Fay", "+4512345673", false).await;

    let preview: ImportPreview = upload(
        &server,
        "/operators/import/preview",
        Some("text/csv"),
        MIXED_CSV.into(),
    )
    .await
    .expect(200);
    assert_eq!(preview.rows.len(), 8);
    let valid: Vec<u32> = preview.rows.iter().filter(|r| r.valid).map(|r| r.row).collect();
    assert_eq!(valid, vec![2, 7, 9]);
    assert_eq!(
        problems_by_row(&preview),
        vec![
            (3, "name".to_owned()),
            (4, "phone".to_owned()),
            (5, "phone".to_owned()),
            (6, "access_type".to_owned()),
            (8, "phone".to_owned()),
        ]
    );
    let duplicate = &preview.problems[2];
    assert!(duplicate.message.contains("row 2"), "{}", duplicate.message);
    assert!(preview.problems[4].message.contains("already an operator"));
    assert_eq!(preview.rows[5].access_type, Some(AccessType::StaticPin));
    assert_eq!(preview.rows[0].phone, "+4512345678");

    let report: ImportReport = upload(
        &server,
        "/operators/import?rows=2,4,7-7,20&invite=true",
        Some("text/csv"),
        MIXED_CSV.into(),
    )
    .await
    .expect(200);
    let imported: Vec<(u32, &str)> = report
        .imported
        .iter()
        .map(|i| (i.row, i.operator.operator.name.as_str()))
        .collect();
    assert_eq!(imported, vec![(2, "Ann"), (7, "Eve")]);
    let skipped: Vec<(u32, &str)> = report.skipped.iter().map(|p| (p.row, p.field.as_str())).collect();
    assert_eq!(skipped, vec![(4, "phone"), (20, "row")]);
    assert!(
        report
            .imported
            .iter()
            .all(|i| i.operator.invite.as_ref().unwrap().sms_id.is_some())
    );
    let outbox: Vec<SmsMessage> = server.get("/sms").await.expect(200);
    assert_eq!(outbox.len(), 2);

    // Without a selection every valid row is imported: now only Gus is new.
    let report: ImportReport = upload(&server, "/operators/import", Some("text/csv"), MIXED_CSV.into())
        .await
        .expect(200);
    assert_eq!(report.imported.len(), 1);
    assert_eq!(report.imported[0].operator.operator.name, "Gus");
    let operators: Vec<OperatorView> = server.get("/operators").await.expect(200);
    assert_eq!(operators.len(), 4);
    server.stop().await;
}

fn workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, title) in ["Phone", "Name", "Access Type"].into_iter().enumerate() {
        sheet.write_string(0, col as u16, title).unwrap();
    }
    sheet.write_string(1, 0, "+45 12 34 56 78").unwrap();
    sheet.write_string(1, 1, "Ann").unwrap();
    sheet.write_string(1, 2, "Key Card").unwrap();
    // Typed as a number, so the + and the country code are lost: a bad row.
    sheet.write_number(3, 0, 4512345679.0).unwrap();
    sheet.write_string(3, 1, "Bob").unwrap();
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn an_xlsx_file_is_read_from_its_first_sheet_including_a_bad_row() {
    let server = start().await;
    let preview: ImportPreview = upload(&server, "/operators/import/preview", Some(XLSX), workbook())
        .await
        .expect(200);
    assert_eq!(preview.rows.len(), 2);
    assert_eq!(preview.rows[0].row, 2);
    assert_eq!(preview.rows[0].access_type, Some(AccessType::KeyCard));
    assert!(preview.rows[0].valid);
    assert_eq!((preview.rows[1].row, preview.rows[1].valid), (4, false));
    assert_eq!(preview.rows[1].phone, "4512345679");
    assert_eq!(problems_by_row(&preview), vec![(4, "phone".to_owned())]);
    assert!(preview.problems[0].message.contains("country code"));

    // No content type: the zip magic says XLSX.
    let report: ImportReport = upload(&server, "/operators/import", None, workbook())
        .await
        .expect(200);
    assert_eq!(report.imported.len(), 1);
    assert_eq!(report.imported[0].operator.operator.phone.as_str(), "+4512345678");
    assert_eq!(report.skipped.len(), 1);
    server.stop().await;
}

/// Found by the import_xlsx fuzz target: a sheet naming its first and its very last cell
/// made the server build a dense 549 GB range and abort. It is read cell by cell now.
#[tokio::test]
async fn a_sheet_with_a_value_in_its_last_cell_is_refused_without_reading_the_space_between() {
    let server = start().await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "Phone").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    let answer = upload(
        &server,
        "/operators/import/preview",
        Some(XLSX),
        book.save_to_buffer().unwrap(),
    )
    .await;
    let message = answer.error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("column 16384"), "{message}");

    // Far down but narrow is fine: only the filled rows count.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, title) in ["Phone", "Name", "Access Type"].into_iter().enumerate() {
        sheet.write_string(0, col as u16, title).unwrap();
    }
    sheet.write_string(1_048_575, 0, "+45 12 34 56 78").unwrap();
    sheet.write_string(1_048_575, 1, "Ann").unwrap();
    sheet.write_string(1_048_575, 2, "Key Card").unwrap();
    let preview: ImportPreview = upload(
        &server,
        "/operators/import/preview",
        Some(XLSX),
        book.save_to_buffer().unwrap(),
    )
    .await
    .expect(200);
    assert_eq!(preview.rows.len(), 1);
    assert_eq!((preview.rows[0].row, preview.rows[0].valid), (1_048_576, true));
    server.stop().await;
}

/// `workbook()` saved by a spreadsheet program, then its sheet XML edited by `edit`.
fn edited_workbook(edit: impl Fn(String) -> String) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut original = zip::ZipArchive::new(std::io::Cursor::new(workbook())).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for index in 0..original.len() {
        let mut part = original.by_index(index).unwrap();
        let name = part.name().to_owned();
        let mut text = String::new();
        part.read_to_string(&mut text).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            text = edit(text);
        }
        out.start_file(name, stored).unwrap();
        out.write_all(text.as_bytes()).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Found by the import_xlsx fuzz target: a cell reference with hundreds of column letters
/// overflowed the spreadsheet reader's arithmetic (a panic in a build with overflow
/// checks, a wrongly placed cell without). Such a file is refused before it is read.
#[tokio::test]
async fn a_cell_reference_longer_than_excel_allows_is_refused() {
    let server = start().await;
    // The edit itself keeps the file readable.
    let same = edited_workbook(|xml| xml);
    let preview: ImportPreview = upload(&server, "/operators/import/preview", Some(XLSX), same)
        .await
        .expect(200);
    assert_eq!(preview.rows.len(), 2);

    let columns = "Z".repeat(300);
    for (edit, quoted) in [
        (format!(r#"r="{columns}1""#), "ZZZZ"),
        ("r=\"A123456789012\"".to_owned(), "A12345678"),
    ] {
        let file = edited_workbook(|xml| xml.replacen(r#"r="B2""#, &edit, 1));
        let answer = upload(&server, "/operators/import/preview", Some(XLSX), file).await;
        let message = answer.error(400, ErrorCode::InvalidRequest);
        assert!(message.contains(quoted), "{message}");
        assert!(message.contains("xl/worksheets/sheet1.xml"), "{message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_template_downloads_as_csv_and_previews_clean() {
    let server = start().await;
    let answer = server.get("/operators/import/template.csv").await;
    assert_eq!(answer.status.as_u16(), 200);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = answer.body.as_str().unwrap().to_owned();
    assert!(text.starts_with("name,phone,access_type\n"), "{text}");
    let preview: ImportPreview = upload(&server, "/operators/import/preview", None, text.into())
        .await
        .expect(200);
    assert_eq!(preview.rows.len(), 1);
    assert!(preview.problems.is_empty(), "{:?}", preview.problems);
    server.stop().await;
}

#[tokio::test]
async fn unreadable_files_missing_columns_and_oversize_uploads_are_explained() {
    let server = start().await;
    let mut fake_zip = b"PK\x03\x04".to_vec();
    fake_zip.extend_from_slice(&[7u8; 200]);
    upload(&server, "/operators/import/preview", None, fake_zip)
        .await
        .error(400, ErrorCode::UnreadableFile);

    let preview: ImportPreview = upload(
        &server,
        "/operators/import/preview?format=csv",
        None,
        b"name,mobile\nAnn,+4512345678\n".to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(problems_by_row(&preview), vec![(1, "phone".to_owned())]);
    assert!(preview.rows.is_empty());

    let too_big = vec![b'a'; 5 * 1024 * 1024 + 1];
    let message = upload(&server, "/operators/import/preview", Some("text/csv"), too_big)
        .await
        .error(413, ErrorCode::InvalidRequest);
    assert!(message.contains("5 MiB"), "{message}");

    let mut many = String::from("name,phone\n");
    for i in 0..10_001 {
        many.push_str(&format!("Op {i},+45{:08}\n", 20_000_000 + i));
    }
    let message = upload(
        &server,
        "/operators/import/preview",
        Some("text/csv"),
        many.into(),
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
    assert!(message.contains("10000"), "{message}");

    upload(
        &server,
        "/operators/import?rows=x",
        Some("text/csv"),
        b"name,phone\n".to_vec(),
    )
    .await
    .error(400, ErrorCode::InvalidRequest);
    server
        .call(Method::POST, "/admin/v1/operators/import/preview", None, None)
        .await
        .error(401, ErrorCode::Unauthorized);
    server.stop().await;
}
