//! # Digital Key unlock
//!
//! The phone opens (or locks) a machine over Bluetooth LE with no network on either side
//! (PROTOCOL.md Part 2). [`crate::OpKey::unlock`] runs one attempt:
//!
//! 1. **Before the radio** (`prepare`): a key on the phone names the machine, it is a
//!    Digital Key, active at server-corrected now, a grant of it valid now names the
//!    machine, and the machine's public key is known. Otherwise the operator learns why
//!    at once ([`UnlockError::NotInScope`], [`UnlockError::GrantExpired`], …).
//! 2. **Over the radio** (`radio`): scan for the machine tag, connect (retrying passing
//!    failures), verify the machine's Hello, sign, send one request, read one answer. A
//!    warm unlock sends the key id of a grant the machine is known to hold; if it no
//!    longer does, the phone asks for a new Hello and sends the full grant once.
//! 3. **Afterwards**: the phone remembers which grant the machine holds, and every
//!    attempt, whatever its end, is written to the outbox of usage events before the call
//!    returns. The next sync uploads it.
//!
//! The radio is a [`BleTransport`]: the shells implement it over the platform's
//! Bluetooth; [`InMemoryTransport`] (tests, demos) and [`SocketTransport`] (a local
//! `opkey-machine run`) come with the core, and with the feature `btleplug` (desktop
//! only, never in the mobile library) `BtleplugTransport`, the computer's own radio.
//!
//! Logs ids, outcomes, counts and durations; never a grant, a transcript, a key or a
//! signature.

#[cfg(feature = "btleplug")]
pub mod btleplug;
pub mod error;
pub mod memory;
mod prepare;
mod radio;
pub mod report;
pub mod socket;
pub mod transport;

#[cfg(feature = "btleplug")]
pub use self::btleplug::BtleplugTransport;
pub use error::UnlockError;
pub use memory::{InMemoryTransport, LinkConditions, SimulatedPeripheral, TransportStats};
pub use report::{DenyReason, MachineCommand, UnlockOutcome, UnlockReport};
pub use socket::SocketTransport;
pub use transport::{
    Advertisement, BleConnection, BleTransport, MachineTag, TransportError, TransportFuture,
};

use crate::OpKey;
use crate::cancel::CancelToken;
use crate::store::CachedGrant;
use opkey_protocol::api::{UsageEvent, UsageEventKind};
use opkey_protocol::ble::Command;
use opkey_protocol::encoding::b64;
use radio::{Counters, Radio};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;
use std::time::Instant;

/// One attempt, from the operator's tap to the event in the outbox.
pub(crate) async fn run(
    op: &OpKey,
    machine_id: &str,
    command: MachineCommand,
    transport: Arc<dyn BleTransport>,
    cancel: &CancelToken,
) -> Result<UnlockReport, UnlockError> {
    let phone = op.store().phone()?;
    if phone.revoked {
        return Err(UnlockError::PhoneRevoked);
    }
    let (Some(_), Some(operator)) = (&phone.phone_id, &phone.operator) else {
        return Err(UnlockError::NotEnrolled);
    };
    let started = Instant::now();
    let at = op.now();
    let event_id = new_event_id()?;
    let mut counters = Counters::default();
    let mut key_id = None;
    let result = attempt(
        op,
        machine_id,
        command,
        transport,
        cancel,
        &mut counters,
        &mut key_id,
    )
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;

    let (outcome, usage_session) = match &result {
        Ok(outcome) => (outcome.code(), outcome.usage_session()),
        Err(e) => (e.code().to_owned(), None),
    };
    let event = UsageEvent {
        id: event_id.clone(),
        kind: match command {
            MachineCommand::Unlock => UsageEventKind::UnlockAttempt,
            MachineCommand::Lock => UsageEventKind::LockAttempt,
        },
        key_id: key_id.clone(),
        machine_id: machine_id.to_owned(),
        at,
        outcome: outcome.clone(),
        usage_session,
        ended_at: None,
    };
    if let Err(e) = op.store().add_to_outbox(&operator.id, &event) {
        // The attempt happened (the relay may be on): say so, and say the record failed.
        tracing::error!(event_id, machine_id, error = %e, "the usage event could not be written");
    }
    tracing::info!(
        event_id,
        machine_id,
        key_id = key_id.as_deref().unwrap_or("-"),
        ?command,
        outcome,
        round_trips = counters.round_trips,
        connect_attempts = counters.connect_attempts,
        bytes_sent = counters.bytes_sent,
        bytes_received = counters.bytes_received,
        full_grant = counters.full_grant_sent,
        ms = elapsed_ms,
        "unlock attempt"
    );
    let outcome = result?;
    Ok(UnlockReport {
        command,
        outcome,
        machine_id: machine_id.to_owned(),
        key_id: key_id.unwrap_or_default(),
        full_grant_sent: counters.full_grant_sent,
        round_trips: counters.round_trips,
        connect_attempts: counters.connect_attempts,
        bytes_sent: counters.bytes_sent,
        bytes_received: counters.bytes_received,
        elapsed_ms,
        event_id,
    })
}

/// The checks, the radio, and what the phone learns about the machine's grant cache.
/// Sets `key_id` as soon as it is known, for the usage event.
async fn attempt(
    op: &OpKey,
    machine_id: &str,
    command: MachineCommand,
    transport: Arc<dyn BleTransport>,
    cancel: &CancelToken,
    counters: &mut Counters,
    key_id: &mut Option<String>,
) -> Result<UnlockOutcome, UnlockError> {
    if cancel.is_cancelled() {
        return Err(UnlockError::Cancelled);
    }
    let now = op.now();
    let phone_key = op.signer.public_key()?;
    let (access, issuer) = {
        let store = op.store();
        (store.machine_access(machine_id)?, store.issuer_public_key()?)
    };
    let plan = prepare::plan(access, machine_id, now, &phone_key, issuer.as_deref()).inspect_err(|e| {
        if let UnlockError::NoUsableKey { key_id: k, .. } | UnlockError::GrantExpired { key_id: k, .. } = e {
            *key_id = Some(k.clone());
        }
    })?;
    *key_id = Some(plan.key_id.clone());

    // One radio exchange at a time.
    let _radio = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(UnlockError::Cancelled),
        guard = op.radio.lock() => guard,
    };
    let radio = Radio {
        transport: &transport,
        signer: &op.signer,
        config: op.config.unlock,
        plan: &plan,
        command: match command {
            MachineCommand::Unlock => Command::Unlock,
            MachineCommand::Lock => Command::Lock,
        },
        now,
    };
    let answer = radio.run(cancel, counters).await?;

    // What the machine holds now; a failure to remember costs a cold unlock, no more.
    let body = plan.grant.body();
    let store = op.store();
    let remembered = match answer.outcome {
        UnlockOutcome::Unlocked { .. } | UnlockOutcome::Locked { .. } => store.remember_cached_grant(
            machine_id,
            &plan.key_id,
            CachedGrant {
                serial: body.serial,
                issued_at: body.issued_at,
            },
        ),
        UnlockOutcome::Denied { .. } if answer.machine_forgot || plan.warm => {
            store.forget_cached_grant(machine_id, &plan.key_id)
        }
        UnlockOutcome::Denied { .. } => Ok(()),
    };
    if let Err(e) = remembered {
        tracing::warn!(machine_id, error = %e, "could not note the machine's grant cache");
    }
    Ok(answer.outcome)
}

/// A random idempotency key: 16 bytes, base64url (22 characters).
fn new_event_id() -> Result<String, UnlockError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| UnlockError::Internal {
            reason: "no system randomness for an event id".into(),
        })?;
    Ok(b64(&bytes))
}
