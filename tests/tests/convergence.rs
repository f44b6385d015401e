//! Whatever admins do, after a sync the phone holds exactly the operator's keys as the
//! backend has them: property-tested over random sequences of edits and syncs.

use opkey_e2e::{Backend, Phone};
use opkey_protocol::api::{CreateKey, EditKey};
use opkey_protocol::{AccessType, Key, KeyState};
use proptest::prelude::*;
use std::collections::BTreeMap;
use time::Duration;

#[derive(Debug, Clone)]
enum Action {
    Create {
        machine: usize,
        access_type: AccessType,
        starts_in_hours: i64,
        lasts_hours: i64,
    },
    EditEnd {
        key: usize,
        lasts_hours: i64,
    },
    EditDescription {
        key: usize,
        text: String,
    },
    Delete {
        key: usize,
    },
    Revoke {
        key: usize,
    },
    Sync,
}

fn action() -> impl Strategy<Value = Action> {
    let access = prop::sample::select(vec![
        AccessType::DigitalKey,
        AccessType::RollingPin,
        AccessType::KeyCard,
    ]);
    prop_oneof![
        3 => (0..3usize, access, -48i64..48, 1i64..500).prop_map(|(machine, access_type, starts_in_hours, lasts_hours)| {
            Action::Create { machine, access_type, starts_in_hours, lasts_hours }
        }),
        2 => (any::<usize>(), 1i64..500).prop_map(|(key, lasts_hours)| Action::EditEnd { key, lasts_hours }),
        1 => (any::<usize>(), "[a-z ]{0,12}").prop_map(|(key, text)| Action::EditDescription { key, text }),
        1 => any::<usize>().prop_map(|key| Action::Delete { key }),
        1 => any::<usize>().prop_map(|key| Action::Revoke { key }),
        1 => Just(Action::Sync),
    ]
}

/// The parts of a key the phone must agree on.
fn fingerprint(key: &Key) -> (u64, String, String, String, bool, Vec<String>, AccessType) {
    (
        key.version,
        key.validity.valid_from.unix_timestamp().to_string(),
        key.validity.valid_to.unix_timestamp().to_string(),
        key.description.clone(),
        key.revoked,
        key.machine_ids.clone(),
        key.access_type,
    )
}

async fn run(actions: Vec<Action>) {
    let backend = Backend::start().await;
    let (op, invitation) = backend.invited_operator("Ola", "+47 412 50 001").await;
    let op = op.operator.id;
    let phone = Phone::new();
    phone.core.redeem_invite(&invitation.link).await.unwrap();
    let mut machines = Vec::new();
    for name in ["Excavator", "Telehandler", "Scissor lift"] {
        machines.push(backend.machine(name).await.id);
    }
    let now = opkey_e2e::now_seconds(backend.clock.as_ref());
    let mut live: Vec<Key> = Vec::new();
    for (n, action) in actions.into_iter().enumerate() {
        match action {
            Action::Create {
                machine,
                access_type,
                starts_in_hours,
                lasts_hours,
            } => {
                let from = now + Duration::hours(starts_in_hours);
                let key = backend
                    .admin
                    .create_key(&CreateKey {
                        operator_id: Some(op.clone()),
                        machine_ids: vec![machines[machine].clone()],
                        access_type,
                        valid_from: from,
                        valid_to: from + Duration::hours(lasts_hours),
                        description: String::new(),
                        card_id: access_type.is_card().then(|| format!("card-{n}")),
                        static_pin: None,
                        pin_algorithm: None,
                        pin_digits: None,
                        pin_period_s: None,
                    })
                    .await
                    .unwrap();
                live.push(key);
            }
            Action::EditEnd { key, lasts_hours } if !live.is_empty() => {
                let i = key % live.len();
                let to = live[i].validity.valid_from + Duration::hours(lasts_hours);
                live[i] = backend
                    .admin
                    .edit_key(
                        &live[i].id,
                        &EditKey {
                            valid_to: Some(to),
                            description: None,
                        },
                    )
                    .await
                    .unwrap();
            }
            Action::EditDescription { key, text } if !live.is_empty() => {
                let i = key % live.len();
                live[i] = backend
                    .admin
                    .edit_key(
                        &live[i].id,
                        &EditKey {
                            valid_to: None,
                            description: Some(text),
                        },
                    )
                    .await
                    .unwrap();
            }
            Action::Delete { key } if !live.is_empty() => {
                let gone = live.remove(key % live.len());
                backend.admin.delete_key(&gone.id).await.unwrap();
            }
            Action::Revoke { key } if !live.is_empty() => {
                let i = key % live.len();
                if !live[i].revoked {
                    live[i] = backend.admin.revoke_key(&live[i].id).await.unwrap();
                }
            }
            Action::Sync => {
                phone.core.sync().await.unwrap();
            }
            _ => {}
        }
    }
    phone.core.sync().await.unwrap();

    let server: BTreeMap<String, _> = backend
        .admin
        .keys(Some(&op), None)
        .await
        .unwrap()
        .iter()
        .map(|k| (k.id.clone(), fingerprint(k)))
        .collect();
    let expected: BTreeMap<String, _> = live.iter().map(|k| (k.id.clone(), fingerprint(k))).collect();
    assert_eq!(server, expected, "the backend lost or invented an edit");
    let on_phone: BTreeMap<String, _> = phone
        .core
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| {
            let revoked = k.state == KeyState::Revoked;
            let ids = k.machines.iter().map(|m| m.id.clone()).collect();
            let fp = (
                k.version,
                k.valid_from.unix_timestamp().to_string(),
                k.valid_to.unix_timestamp().to_string(),
                k.description,
                revoked,
                ids,
                k.access_type,
            );
            (k.id, fp)
        })
        .collect();
    assert_eq!(on_phone, server, "after a sync the phone equals the backend");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn after_random_admin_edits_and_a_sync_the_phone_equals_the_backend(actions in prop::collection::vec(action(), 1..25)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(actions));
    }
}
