//! The checks before any radio traffic: which key and which grant open this machine now,
//! and whether the machine can be recognised. Pure: fed what the store holds and the
//! server-corrected time, it returns a [`Plan`] or the reason there is none.

use super::error::UnlockError;
use crate::store::{MachineAccess, StoredGrant};
use opkey_protocol::auth::check_public_key_shape;
use opkey_protocol::ble::Grant;
use opkey_protocol::encoding::unb64;
use opkey_protocol::{AccessType, KeyState};
use time::OffsetDateTime;

/// What to send to one machine.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub machine_id: String,
    pub key_id: String,
    pub machine_public_key: Vec<u8>,
    pub grant: Grant,
    /// The machine is known to have cached exactly this grant: send the key id only.
    pub warm: bool,
    pub revocations: Option<Vec<u8>>,
}

/// Picks the newest grant valid now of an active Digital Key that names `machine_id` and
/// was issued to `phone_public_key`. `issuer` (when known) re-checks the grant's
/// signature, so a damaged store is caught before the radio rather than by the machine.
pub(crate) fn plan(
    access: MachineAccess,
    machine_id: &str,
    now: OffsetDateTime,
    phone_public_key: &[u8],
    issuer: Option<&[u8]>,
) -> Result<Plan, UnlockError> {
    let machine = || machine_id.to_owned();
    if access.keys.is_empty() {
        return Err(UnlockError::NotInScope {
            machine_id: machine(),
        });
    }
    let digital: Vec<_> = access
        .keys
        .iter()
        .filter(|k| k.access_type == AccessType::DigitalKey)
        .collect();
    if digital.is_empty() {
        return Err(UnlockError::NotADigitalKey {
            machine_id: machine(),
        });
    }
    let states: Vec<_> = digital
        .iter()
        .map(|k| (*k, KeyState::at(&k.validity, k.revoked, now)))
        .collect();
    let active: Vec<&str> = states
        .iter()
        .filter(|(_, s)| s.is_usable())
        .map(|(k, _)| k.id.as_str())
        .collect();
    if active.is_empty() {
        // Name the key that ends last: the one the operator most likely means.
        let (key, state) = states
            .iter()
            .max_by_key(|(k, _)| k.validity.valid_to)
            .expect("at least one digital key");
        return Err(UnlockError::NoUsableKey {
            machine_id: machine(),
            key_id: key.id.clone(),
            state: *state,
        });
    }
    let now_s = now.unix_timestamp().max(0) as u64;
    let best = access
        .grants
        .iter()
        .filter(|g| active.contains(&g.key_id.as_str()))
        .filter_map(|g| usable(g, machine_id, now_s, phone_public_key, issuer))
        .max_by_key(|g| {
            let b = g.body();
            (b.serial, b.valid_to, b.issued_at)
        });
    let Some(grant) = best else {
        return Err(UnlockError::GrantExpired {
            machine_id: machine(),
            key_id: active[0].to_owned(),
        });
    };
    let machine_public_key = access
        .ble_public_key
        .as_deref()
        .and_then(unb64)
        .filter(|k| check_public_key_shape(k).is_ok())
        .ok_or_else(|| UnlockError::MachineKeyUnknown {
            machine_id: machine(),
        })?;
    let body = grant.body();
    let warm = access
        .cached
        .iter()
        .any(|(key, c)| *key == body.key_id && c.serial == body.serial && c.issued_at == body.issued_at);
    Ok(Plan {
        machine_id: machine(),
        key_id: body.key_id.clone(),
        machine_public_key,
        warm,
        revocations: access.revocations,
        grant,
    })
}

fn usable(
    stored: &StoredGrant,
    machine_id: &str,
    now_s: u64,
    phone_public_key: &[u8],
    issuer: Option<&[u8]>,
) -> Option<Grant> {
    let grant = Grant::decode(&stored.bytes).ok()?;
    let ok = grant.key_id() == stored.key_id
        && grant.covers(machine_id)
        && grant.check_time(now_s).is_ok()
        && grant.body().phone_public_key[..] == *phone_public_key
        && issuer.is_none_or(|issuer| grant.verify(issuer).is_ok());
    ok.then_some(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccessKey, CachedGrant};
    use opkey_protocol::ble::test_support::{Issuer, PhoneKey, TestMachine, grant_body};
    use opkey_protocol::encoding::b64;
    use opkey_protocol::model::Validity;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);
    const M: &str = "mch_aaaaaaaaaaaaaaaa";

    struct World {
        issuer: Issuer,
        phone: PhoneKey,
        machine: TestMachine,
    }

    fn world() -> World {
        World {
            issuer: Issuer::new(),
            phone: PhoneKey::new(),
            machine: TestMachine::new(M),
        }
    }

    fn key(id: &str, access_type: AccessType, from: OffsetDateTime, to: OffsetDateTime) -> AccessKey {
        AccessKey {
            id: id.into(),
            access_type,
            validity: Validity {
                valid_from: from,
                valid_to: to,
            },
            revoked: false,
        }
    }

    fn grant(w: &World, key_id: &str, machines: &[&str], serial: u32, hours: i64) -> StoredGrant {
        let now = NOW.unix_timestamp() as u64;
        let mut body = grant_body(key_id, &w.phone, machines, now - 3600, now + hours as u64 * 3600);
        body.serial = serial;
        let g = w.issuer.grant(body);
        StoredGrant {
            key_id: key_id.into(),
            serial,
            issued_at: g.body().issued_at,
            bytes: g.into_bytes(),
        }
    }

    fn access(w: &World) -> MachineAccess {
        MachineAccess {
            ble_public_key: Some(b64(w.machine.public_key())),
            keys: vec![key(
                "k1",
                AccessType::DigitalKey,
                NOW - Duration::days(1),
                NOW + Duration::days(30),
            )],
            grants: vec![grant(w, "k1", &[M], 1, 24)],
            revocations: None,
            cached: vec![],
        }
    }

    fn run(w: &World, a: MachineAccess) -> Result<Plan, UnlockError> {
        plan(a, M, NOW, &w.phone.public_key(), Some(w.issuer.public_key()))
    }

    #[test]
    fn the_newest_grant_naming_the_machine_is_chosen_and_warm_only_if_the_machine_holds_it() {
        let w = world();
        let mut a = access(&w);
        a.grants.push(grant(&w, "k1", &["mch_other"], 3, 24));
        a.grants.push(grant(&w, "k1", &["mch_x", M], 2, 24));
        let p = run(&w, a.clone()).unwrap();
        assert_eq!((p.grant.body().serial, p.warm), (2, false));
        a.cached = vec![(
            "k1".into(),
            CachedGrant {
                serial: 2,
                issued_at: p.grant.body().issued_at,
            },
        )];
        assert!(run(&w, a).unwrap().warm);
    }

    #[test]
    fn each_check_before_the_radio_names_its_reason() {
        let w = world();
        let mut a = access(&w);
        a.keys.clear();
        assert!(matches!(run(&w, a), Err(UnlockError::NotInScope { .. })));

        let mut a = access(&w);
        a.keys[0].access_type = AccessType::StaticPin;
        assert!(matches!(run(&w, a), Err(UnlockError::NotADigitalKey { .. })));

        let mut a = access(&w);
        a.keys[0].validity.valid_to = NOW;
        assert!(matches!(
            run(&w, a),
            Err(UnlockError::NoUsableKey {
                state: KeyState::Expired,
                ..
            })
        ));

        let mut a = access(&w);
        a.grants = vec![grant(&w, "k1", &[M], 1, 0)];
        assert!(matches!(run(&w, a), Err(UnlockError::GrantExpired { .. })));

        // A grant signed by someone else, or for another phone key, is no grant.
        let mut a = access(&w);
        let other = world();
        a.grants = vec![grant(&other, "k1", &[M], 1, 24)];
        assert!(matches!(run(&w, a), Err(UnlockError::GrantExpired { .. })));

        let mut a = access(&w);
        a.ble_public_key = None;
        assert!(matches!(run(&w, a), Err(UnlockError::MachineKeyUnknown { .. })));
        let mut a = access(&w);
        a.ble_public_key = Some(b64(&[4; 10]));
        assert!(matches!(run(&w, a), Err(UnlockError::MachineKeyUnknown { .. })));
    }
}
