//! The state file: atomic, never rolled back, typed errors for what cannot be trusted; and
//! the key and bundle a machine is provisioned with.

use crate::support::*;
use opkey_machine::{FileStore, Machine, MachineError, SessionEnd, StoredState, generate_key_file};
use opkey_protocol::ble::revocation::{REVOKED_ENTIRELY, Revocation};
use opkey_protocol::ble::{ReasonCode, UnlockOutcome};
use ring::rand::SystemRandom;
use std::path::{Path, PathBuf};

struct Files {
    _dir: tempfile::TempDir,
    key: PathBuf,
    state: PathBuf,
}

fn files(site: &Site) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("machine.key");
    let state = dir.path().join("state.json");
    site.write_machine_key(&key);
    Files {
        _dir: dir,
        key,
        state,
    }
}

fn open(site: &Site, files: &Files) -> Result<Machine, MachineError> {
    Machine::open(&site.provisioning(), &files.key, &files.state)
}

fn on_disk(path: &Path) -> StoredState {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_restarted_machine_continues_its_counters_and_keeps_its_grants_and_revocations() {
    let site = Site::new();
    let files = files(&site);
    let mut machine = open(&site, &files).unwrap();
    let other_key = Revocation {
        key_id: "key_bbbbbbbbbbbbbbbb".into(),
        min_serial: REVOKED_ENTIRELY,
    };
    let list = site.issuer.revocations(MACHINE, 3, T0 - 10, vec![other_key]);
    machine.apply_revocations(list.as_bytes()).unwrap();
    assert_eq!(
        site.unlock(&mut machine, site.full(), at(T0)).phone,
        unlocked(1, 120)
    );
    let counter = machine.state().hello_counter;
    drop(machine); // power cut with the relay on

    let mut machine = open(&site, &files).unwrap();
    assert!(!machine.relay().is_on(), "the relay is off after a restart");
    assert_eq!(machine.state().hello_counter, counter);
    assert_eq!(machine.state().revocation_sequence, 3);
    let interrupted = &machine.usage().sessions()[0];
    assert_eq!(
        (interrupted.ended_at, interrupted.ended_by),
        (None, Some(SessionEnd::Restart))
    );

    let warm = site.unlock(&mut machine, site.cached(), at(T0 + 60));
    assert_eq!(
        warm.phone,
        unlocked(2, 120),
        "the grant cache is warm after a restart"
    );
    assert_eq!(machine.state().hello_counter, counter + 1);
    assert_eq!(on_disk(&files.state).usage.len(), 2);
}

#[test]
fn the_hello_counter_is_on_disk_before_the_hello_is_sent() {
    let site = Site::new();
    let files = files(&site);
    let mut machine = open(&site, &files).unwrap();
    let mut link = machine.connect();
    let hello = link.on_subscribe(&mut machine, at(T0)).unwrap();
    assert!(!hello.fragments.is_empty());
    assert_eq!(on_disk(&files.state).verifier.hello_counter, 1);
    drop(machine); // crash with the Hello in flight

    let mut machine = open(&site, &files).unwrap();
    machine.connect().on_subscribe(&mut machine, at(T0)).unwrap();
    assert_eq!(
        on_disk(&files.state).verifier.hello_counter,
        2,
        "no counter is ever sent twice"
    );
    assert!(!files.state.with_file_name("state.json.tmp").exists());
}

#[test]
fn a_corrupt_state_file_or_one_of_another_machine_is_a_typed_error() {
    let site = Site::new();
    let files = files(&site);
    std::fs::write(&files.state, b"{\"format\": 1, \"machine_id\": ").unwrap();
    assert!(matches!(
        open(&site, &files),
        Err(MachineError::CorruptState { .. })
    ));

    let mut stored = {
        std::fs::remove_file(&files.state).unwrap();
        drop(open(&site, &files).unwrap());
        on_disk(&files.state)
    };
    stored.machine_id = "mch_bbbbbbbbbbbbbbbb".into();
    std::fs::write(&files.state, serde_json::to_vec(&stored).unwrap()).unwrap();
    assert!(matches!(
        open(&site, &files),
        Err(MachineError::StateOfAnotherMachine { .. })
    ));

    stored.machine_id = MACHINE.into();
    stored.verifier.revocations = Some(vec![1, 2, 3]);
    std::fs::write(&files.state, serde_json::to_vec(&stored).unwrap()).unwrap();
    assert!(matches!(open(&site, &files), Err(MachineError::Setup(_))));
}

#[test]
fn a_key_that_is_not_the_provisioned_one_is_refused() {
    let site = Site::new();
    let files = files(&site);
    let other = files.key.with_file_name("other.key");
    generate_key_file(&other, &SystemRandom::new()).unwrap();
    assert!(matches!(
        Machine::open(&site.provisioning(), &other, &files.state),
        Err(MachineError::KeyMismatch)
    ));
    assert!(!files.state.exists(), "nothing is written for a refused key");

    let junk = other.with_file_name("junk.key");
    std::fs::write(&junk, b"not a key").unwrap();
    assert!(matches!(
        Machine::open(&site.provisioning(), &junk, &files.state),
        Err(MachineError::BadKeyFile { .. })
    ));
}

#[test]
fn keygen_writes_a_private_file_once_and_prints_the_key_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machine.key");
    let public_key = generate_key_file(&path, &SystemRandom::new()).unwrap();
    let decoded = opkey_protocol::encoding::unb64(&public_key).unwrap();
    assert_eq!((decoded.len(), decoded[0]), (65, 0x04), "SEC1 uncompressed P-256");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        generate_key_file(&path, &SystemRandom::new()),
        Err(MachineError::KeyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn the_bundles_revocation_list_is_applied_when_the_machine_opens() {
    let mut site = Site::new();
    let list = site.issuer.revocations(
        MACHINE,
        1,
        T0 - 10,
        vec![Revocation {
            key_id: KEY.into(),
            min_serial: REVOKED_ENTIRELY,
        }],
    );
    site.revocations = Some(list.into_bytes());
    let mut machine = site.start();
    assert_eq!(machine.state().revocation_sequence, 1);
    let attempt = site.unlock(&mut machine, site.full(), at(T0));
    assert_eq!(attempt.phone, Ok(UnlockOutcome::Denied(ReasonCode::Revoked)));

    let forged = opkey_protocol::ble::test_support::Issuer::new().revocations(MACHINE, 2, T0, vec![]);
    site.revocations = Some(forged.into_bytes());
    assert!(matches!(
        site.start_on(Box::new(opkey_machine::MemoryStore::new())),
        Err(MachineError::BadBundleRevocations(_))
    ));
}

#[test]
fn a_bundle_with_a_garbled_key_field_is_a_typed_error() {
    let site = Site::new();
    let mut provisioning = site.provisioning();
    provisioning.issuer_public_key = "not base64!".into();
    assert!(matches!(
        Machine::new(
            &provisioning,
            site.machine_key(),
            Box::new(FileStore::new("/nonexistent/x"))
        ),
        Err(MachineError::BadProvisioningField {
            field: "issuer_public_key"
        })
    ));
}
