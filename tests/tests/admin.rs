//! Fleet admins manage access over HTTP: roles, device limits and bulk upload.

use opkey_e2e::Backend;
use opkey_protocol::api::{AdminRole, CreateAdminUser, CreateKey, CreateOperator, ErrorCode};
use opkey_protocol::{AccessType, model::SlotClass};
use opkey_server::admin_client::{AdminError, ImportFormat};
use time::Duration;

fn code(e: &AdminError) -> Option<ErrorCode> {
    e.code()
}

#[tokio::test]
async fn only_admins_and_fleet_admins_may_manage_access() {
    let backend = Backend::start().await;
    let user = |name: &str, role| CreateAdminUser {
        name: name.into(),
        role,
        organization_id: None,
    };
    let fleet = backend
        .admin
        .create_user(&user("Dana", AdminRole::FleetAdmin))
        .await
        .unwrap();
    let viewer = backend
        .admin
        .create_user(&user("Vic", AdminRole::Viewer))
        .await
        .unwrap();
    let operator = CreateOperator {
        name: "Ola".into(),
        phone: "+47 412 20 001".into(),
        access_type: None,
        send_invite: false,
    };

    let as_fleet = backend.admin.with_token(&fleet.token);
    as_fleet
        .create_operator(&operator)
        .await
        .expect("a fleet admin creates operators");
    let machine = backend.machine("Excavator").await;

    let as_viewer = backend.admin.with_token(&viewer.token);
    let other = CreateOperator {
        phone: "+47 412 20 002".into(),
        ..operator.clone()
    };
    let err = as_viewer.create_operator(&other).await.unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::Forbidden), "{err:?}");
    let err = as_viewer.delete_machine(&machine.id).await.unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::Forbidden), "{err:?}");
    assert_eq!(as_viewer.whoami().await.unwrap().role, AdminRole::Viewer);

    let err = backend
        .admin
        .with_token("not-a-token")
        .operators()
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::Unauthorized), "{err:?}");
    let err = as_fleet
        .create_user(&user("Eve", AdminRole::Admin))
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Some(ErrorCode::Forbidden),
        "a fleet admin cannot mint admins: {err:?}"
    );
}

#[tokio::test]
async fn a_device_holds_at_most_495_static_pins_and_the_error_names_it() {
    let backend = Backend::start().await;
    let machine = backend.machine("Excavator EX-210").await;
    let now = backend.clock.now();
    let body = |access_type: AccessType, i: usize| CreateKey {
        operator_id: None,
        machine_ids: vec![machine.id.clone()],
        access_type,
        valid_from: now - Duration::hours(1),
        valid_to: now + Duration::days(30),
        description: format!("slot {i}"),
        card_id: access_type.is_card().then(|| format!("card-{i}")),
        static_pin: None,
        pin_algorithm: None,
        pin_digits: None,
        pin_period_s: None,
    };
    for i in 0..SlotClass::DEVICE_LIMIT {
        backend
            .admin
            .create_key(&body(AccessType::StaticPin, i))
            .await
            .expect("within the limit");
    }
    let err = backend
        .admin
        .create_key(&body(AccessType::StaticPin, 495))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::DeviceLimitReached), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("Excavator EX-210") && message.contains("495"),
        "{message}"
    );

    // Other lists on the same device are separate.
    backend
        .admin
        .create_key(&body(AccessType::KeyCard, 1))
        .await
        .expect("key cards have their own list");
    backend
        .admin
        .create_key(&body(AccessType::IpafCard, 1))
        .await
        .expect("IPAF cards have their own list");
}

const CSV: &str = "name,phone,access_type\n\
Ola Nordmann,+47 412 30 001,digital-key\n\
,+47 412 30 002,digital-key\n\
Kari Nordmann,412 30 003,rolling-pin\n\
Per Hansen,+47 412 30 004,master-key\n\
Anne Olsen,+47 412 30 005,Rolling PIN\n\
Ola Again,+47 412 30 001,\n";

#[tokio::test]
async fn csv_upload_reports_each_bad_row_and_imports_the_selected_good_ones() {
    let backend = Backend::start().await;
    let preview = backend
        .admin
        .import_preview(CSV.as_bytes().to_vec(), ImportFormat::Csv)
        .await
        .unwrap();
    assert_eq!(preview.rows.len(), 6);
    let bad: Vec<(u32, &str)> = preview
        .problems
        .iter()
        .map(|p| (p.row, p.field.as_str()))
        .collect();
    assert!(bad.contains(&(3, "name")), "{bad:?}");
    assert!(bad.contains(&(4, "phone")), "{bad:?}");
    assert!(bad.contains(&(5, "access_type")), "{bad:?}");
    assert!(
        bad.contains(&(7, "phone")),
        "duplicate phone in the file: {bad:?}"
    );
    let valid: Vec<u32> = preview.rows.iter().filter(|r| r.valid).map(|r| r.row).collect();
    assert_eq!(valid, vec![2, 6]);
    assert!(
        backend.admin.operators().await.unwrap().is_empty(),
        "a preview imports nothing"
    );

    let report = backend
        .admin
        .import(CSV.as_bytes().to_vec(), ImportFormat::Csv, Some("4,6"), true)
        .await
        .unwrap();
    assert_eq!(report.imported.iter().map(|i| i.row).collect::<Vec<_>>(), vec![6]);
    assert_eq!(report.skipped.iter().map(|p| p.row).collect::<Vec<_>>(), vec![4]);
    let ops = backend.admin.operators().await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].operator.name, "Anne Olsen");
    assert_eq!(
        backend.admin.sms_outbox().await.unwrap().len(),
        1,
        "the imported operator was invited"
    );
}

#[tokio::test]
async fn excel_upload_imports_good_rows_and_reports_bad_ones() {
    let backend = Backend::start().await;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let rows = [
        ["Phone", "Name", "Access type"],
        ["+47 412 40 001", "Ola Nordmann", "Digital Key"],
        ["not a phone", "Kari", ""],
        ["+47 412 40 003", "Per Hansen", ""],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).unwrap();
        }
    }
    let bytes = workbook.save_to_buffer().unwrap();

    let report = backend
        .admin
        .import(bytes, ImportFormat::Xlsx, None, false)
        .await
        .unwrap();
    let imported: Vec<&str> = report
        .imported
        .iter()
        .map(|i| i.operator.operator.name.as_str())
        .collect();
    assert_eq!(imported, vec!["Ola Nordmann", "Per Hansen"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(
        (report.skipped[0].row, report.skipped[0].field.as_str()),
        (3, "phone")
    );
    assert_eq!(
        backend.admin.sms_outbox().await.unwrap().len(),
        0,
        "no invites unless asked"
    );
}

#[tokio::test]
async fn the_csv_template_imports_as_is() {
    let backend = Backend::start().await;
    let template = backend.admin.import_template().await.unwrap();
    assert!(
        template
            .lines()
            .next()
            .unwrap()
            .to_lowercase()
            .starts_with("name,phone")
    );
    let preview = backend
        .admin
        .import_preview(template.into_bytes(), ImportFormat::Csv)
        .await
        .unwrap();
    assert!(preview.problems.is_empty(), "{:?}", preview.problems);
}
