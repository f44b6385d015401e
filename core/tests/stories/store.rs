use super::*;
use fake::OPERATOR;
use opkey_core::store::{APPLICATION_ID, DB_FILE_NAME, SCHEMA_VERSION};
use opkey_core::{Error, StoreError};
use rusqlite::Connection;

fn open_err(phone: &Phone) -> Error {
    OpKey::open(
        phone.config(),
        phone.secrets.clone() as Arc<dyn SecretStore>,
        None,
        phone.clock.clone(),
    )
    .unwrap_err()
}

#[tokio::test]
async fn keys_and_enrollment_survive_closing_and_reopening_the_app() {
    let (fake, phone, op) = enrolled().await;
    fake.add_machine("m1", "Excavator");
    fake.put_key("k1", OPERATOR, &["m1"], T0, T0 + time::Duration::days(30));
    op.sync().await.unwrap();
    let (keys, status) = (op.keys().unwrap(), op.status().unwrap());
    drop(op);
    drop(fake); // offline from here on

    let op = phone.open();
    assert_eq!(op.keys().unwrap(), keys);
    assert_eq!(op.status().unwrap(), status);
    assert_eq!(op.key("k1").unwrap(), keys[0]);
    assert_eq!(
        op.key("nope").unwrap_err(),
        Error::KeyNotFound { id: "nope".into() }
    );
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let phone = Phone::new(manual(T0));
    std::fs::write(phone.dir.path().join(DB_FILE_NAME), vec![0x5a; 4096]).unwrap();
    assert_eq!(open_err(&phone), Error::Store(StoreError::Corrupt));
}

#[test]
fn another_apps_database_is_refused_and_left_untouched() {
    for app_id in [0, 0x1234] {
        let phone = Phone::new(manual(T0));
        let path = phone.dir.path().join(DB_FILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "application_id", app_id).unwrap();
            conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        assert_eq!(open_err(&phone), Error::Store(StoreError::Foreign));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}

#[test]
fn a_store_from_a_newer_app_version_asks_for_an_update() {
    let phone = Phone::new(manual(T0));
    {
        let conn = Connection::open(phone.dir.path().join(DB_FILE_NAME)).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        conn.execute_batch("CREATE TABLE future (x);").unwrap();
    }
    let err = open_err(&phone);
    assert_eq!(
        err,
        Error::Store(StoreError::TooNew {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        })
    );
    assert!(err.to_string().contains("update the app"));
}

#[test]
fn a_lost_or_different_data_key_is_caught_when_the_store_opens() {
    let phone = Phone::new(manual(T0));
    drop(phone.open());

    let lost = Phone {
        dir: tempfile::tempdir().unwrap(),
        secrets: Arc::new(MemorySecretStore::new()),
        clock: phone.clock.clone(),
    };
    let config = phone.config();
    let open = |secrets: Arc<MemorySecretStore>| {
        OpKey::open(
            config.clone(),
            secrets as Arc<dyn SecretStore>,
            None,
            lost.clock.clone(),
        )
    };
    assert_eq!(open(lost.secrets.clone()).unwrap_err(), Error::DataKeyMismatch);

    let other = Arc::new(MemorySecretStore::new());
    other
        .save(opkey_core::secrets::DATA_KEY_NAME, &[42u8; 32])
        .unwrap();
    let err = open(other).unwrap_err();
    assert_eq!(err, Error::DataKeyMismatch);
    assert!(err.to_string().contains("re-enroll with a new invite"));

    // The right key still opens it, and erasing starts over.
    assert!(open(phone.secrets.clone()).is_ok());
    OpKey::erase_local_data(&config, phone.secrets.as_ref()).unwrap();
    assert!(open(lost.secrets.clone()).is_ok());
}

#[test]
fn the_data_key_lives_in_the_platform_secret_store_not_in_the_data_dir() {
    let phone = Phone::new(manual(T0));
    drop(phone.open());
    let key = phone
        .secrets
        .load(opkey_core::secrets::DATA_KEY_NAME)
        .unwrap()
        .unwrap();
    assert_eq!(key.len(), 32);
    for entry in std::fs::read_dir(phone.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(32).any(|w| w == key.as_slice()));
    }
}
