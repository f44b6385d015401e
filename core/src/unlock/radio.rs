//! The radio phase of one unlock: find the machine's advertisement, connect (retrying
//! passing link failures), subscribe, and run the exchange of PROTOCOL.md 2.6 over a
//! [`BleTransport`], with the sans-IO [`PhoneUnlock`] deciding what every byte means.
//!
//! Owns the rule that a connection is always closed: after the answer, after an error,
//! after a cancel, and (from a spawned task) when the unlock's future is dropped. Nothing
//! is written to the link before the machine's Hello has verified. Never logs a
//! fragment, a transcript or a signature.

use super::error::UnlockError;
use super::prepare::Plan;
use super::report::{DenyReason, UnlockOutcome};
use super::transport::{Advertisement, BleConnection, BleTransport};
use crate::cancel::CancelToken;
use crate::config::UnlockConfig;
use crate::signer::{Signer, SignerError};
use opkey_protocol::ble::advert::SERVICE_UUID_STR;
use opkey_protocol::ble::{
    self as proto, Command, Credential, PhoneUnlock, PhoneUnlockParams, Reassembler, der_to_raw, fragment,
    machine_tag,
};
use ring::rand::SystemRandom;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Slack over a timeout handed to the transport, in case it does not keep it.
const GRACE: Duration = Duration::from_secs(2);
/// How long closing a connection may take before the driver gives up on it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the link carried, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub round_trips: u32,
    pub connect_attempts: u32,
    pub bytes_sent: u32,
    pub bytes_received: u32,
    pub full_grant_sent: bool,
}

/// How the machine answered, and what the phone learned about its grant cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub outcome: UnlockOutcome,
    /// The machine asked for the full grant: it no longer holds the one remembered.
    pub machine_forgot: bool,
}

/// One exchange's fixed inputs.
pub(crate) struct Radio<'a> {
    pub transport: &'a Arc<dyn BleTransport>,
    pub signer: &'a Arc<dyn Signer>,
    pub config: UnlockConfig,
    pub plan: &'a Plan,
    pub command: Command,
    /// Server-corrected time, for the grant's window.
    pub now: OffsetDateTime,
}

impl Radio<'_> {
    /// Scan, connect, exchange, disconnect. A cancel lands at any wait; the connection
    /// is closed all the same.
    pub(crate) async fn run(
        &self,
        cancel: &CancelToken,
        counters: &mut Counters,
    ) -> Result<Answer, UnlockError> {
        let advert = cancellable(cancel, self.find()).await?;
        let link = cancellable(cancel, self.connect(&advert, counters)).await?;
        let answer = cancellable(cancel, self.talk(link.connection, counters)).await;
        link.close().await;
        answer
    }

    /// The strongest advertiser with the machine's tag.
    async fn find(&self) -> Result<Advertisement, UnlockError> {
        let tag = machine_tag(&self.plan.machine_id);
        let timeout = self.config.scan_timeout;
        let scan = self
            .transport
            .scan(SERVICE_UUID_STR.to_owned(), vec![tag], timeout);
        let seen = match tokio::time::timeout(timeout + GRACE, scan).await {
            Ok(seen) => seen.map_err(|e| self.transport_error(e))?,
            Err(_) => Vec::new(),
        };
        seen.into_iter()
            .filter(|a| a.tag == tag)
            .max_by_key(|a| a.rssi.unwrap_or(i16::MIN))
            .ok_or_else(|| UnlockError::NotInRange {
                machine_id: self.plan.machine_id.clone(),
            })
    }

    /// Connects, retrying GATT errors and dropped links with a doubling wait.
    async fn connect(&self, advert: &Advertisement, counters: &mut Counters) -> Result<Link, UnlockError> {
        let attempts = self.config.connect_attempts.max(1);
        let timeout = self.config.connect_timeout;
        let mut delay = self.config.connect_retry_delay;
        for attempt in 1..=attempts {
            counters.connect_attempts = attempt;
            let connect = self.transport.connect(advert.peripheral_id.clone(), timeout);
            let result = match tokio::time::timeout(timeout + GRACE, connect).await {
                Ok(result) => result,
                Err(_) => return Err(UnlockError::TimedOut),
            };
            match result {
                Ok(connection) => {
                    return Ok(Link {
                        transport: self.transport.clone(),
                        connection,
                        open: true,
                    });
                }
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::info!(
                        machine_id = %self.plan.machine_id, attempt, error = %e,
                        "connection failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                Err(e) => return Err(self.transport_error(e)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Subscribe, Hello, request, answer; once more with the full grant if the machine
    /// no longer holds the cached one.
    async fn talk(&self, connection: BleConnection, counters: &mut Counters) -> Result<Answer, UnlockError> {
        let mut link = Wire {
            radio: self,
            connection,
            reassembler: Reassembler::new(),
        };
        self.transport
            .subscribe(connection.handle)
            .await
            .map_err(|e| self.transport_error(e))?;
        let hello = link.receive(counters).await?;
        let plan = self.plan;
        if !plan.warm {
            let outcome = link.exchange(&hello, self.full(), counters).await?;
            return Ok(Answer {
                outcome: settle(outcome),
                machine_forgot: false,
            });
        }
        let cached = Credential::Cached {
            key_id: plan.key_id.clone(),
        };
        match link.exchange(&hello, cached, counters).await? {
            proto::UnlockOutcome::UnknownGrant => {
                tracing::info!(machine_id = %plan.machine_id, key_id = %plan.key_id, "machine asked for the full grant");
                link.send(&PhoneUnlock::hello_request(), counters).await?;
                let hello = link.receive(counters).await?;
                let outcome = link.exchange(&hello, self.full(), counters).await?;
                Ok(Answer {
                    outcome: settle(outcome),
                    machine_forgot: true,
                })
            }
            outcome => Ok(Answer {
                outcome: settle(outcome),
                machine_forgot: false,
            }),
        }
    }

    fn full(&self) -> Credential {
        Credential::Full {
            grant_bytes: self.plan.grant.as_bytes().to_vec(),
        }
    }

    fn transport_error(&self, e: super::TransportError) -> UnlockError {
        UnlockError::from_transport(e, &self.plan.machine_id)
    }
}

/// One connection's fragments in and out.
struct Wire<'r, 'a> {
    radio: &'r Radio<'a>,
    connection: BleConnection,
    reassembler: Reassembler,
}

impl Wire<'_, '_> {
    /// Answers `hello` with a request carrying `credential`; returns the machine's answer.
    async fn exchange(
        &mut self,
        hello: &[u8],
        credential: Credential,
        counters: &mut Counters,
    ) -> Result<proto::UnlockOutcome, UnlockError> {
        let radio = self.radio;
        let plan = radio.plan;
        let full = matches!(credential, Credential::Full { .. });
        let params = PhoneUnlockParams {
            machine_id: plan.machine_id.clone(),
            machine_public_key: plan.machine_public_key.clone(),
            command: radio.command,
            credential,
            revocations: plan.revocations.clone(),
        };
        let mut phone = PhoneUnlock::new(params, radio.now).map_err(|e| phone_error(e, plan))?;
        let needed = phone
            .on_hello(hello, &SystemRandom::new())
            .map_err(|e| phone_error(e, plan))?;
        let signature = sign(radio.signer, needed.transcript).await?;
        let request = phone.on_signature(signature).map_err(|e| phone_error(e, plan))?;
        counters.full_grant_sent |= full;
        self.send(&request, counters).await?;
        let answer = self.receive(counters).await?;
        phone.on_result(&answer).map_err(|e| phone_error(e, plan))
    }

    /// Writes one message, fragment by fragment; counts a round trip.
    async fn send(&mut self, message: &[u8], counters: &mut Counters) -> Result<(), UnlockError> {
        let fragments = fragment(message, self.connection.att_mtu).map_err(|e| UnlockError::Internal {
            reason: format!("the message cannot be framed: {e}"),
        })?;
        for f in fragments {
            counters.bytes_sent += f.len() as u32;
            self.radio
                .transport
                .write(self.connection.handle, f)
                .await
                .map_err(|e| self.radio.transport_error(e))?;
        }
        counters.round_trips += 1;
        Ok(())
    }

    /// The machine's next message, within the answer timeout.
    async fn receive(&mut self, counters: &mut Counters) -> Result<Vec<u8>, UnlockError> {
        let deadline = Instant::now() + self.radio.config.answer_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UnlockError::TimedOut);
            }
            let next = self
                .radio
                .transport
                .next_notification(self.connection.handle, left);
            let fragment = match tokio::time::timeout(left + GRACE, next).await {
                Err(_) => return Err(UnlockError::TimedOut),
                Ok(result) => result.map_err(|e| self.radio.transport_error(e))?,
            };
            counters.bytes_received += fragment.len() as u32;
            match self.reassembler.push(&fragment) {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => {
                    return Err(UnlockError::BadAnswer {
                        reason: format!("framing: {e}"),
                    });
                }
            }
        }
    }
}

/// An open connection; closed by [`Link::close`], or by a spawned task if dropped open.
struct Link {
    transport: Arc<dyn BleTransport>,
    connection: BleConnection,
    open: bool,
}

impl Link {
    async fn close(mut self) {
        self.open = false;
        let closing = self.transport.disconnect(self.connection.handle);
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "disconnect failed"),
            Err(_) => tracing::warn!("disconnect did not finish in time"),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // The unlock's future was dropped mid-exchange: close from a task.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let transport = self.transport.clone();
            let handle = self.connection.handle;
            runtime.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, transport.disconnect(handle)).await;
            });
        }
    }
}

/// Runs `work` unless `cancel` fires first.
async fn cancellable<T>(
    cancel: &CancelToken,
    work: impl Future<Output = Result<T, UnlockError>>,
) -> Result<T, UnlockError> {
    if cancel.is_cancelled() {
        return Err(UnlockError::Cancelled);
    }
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(UnlockError::Cancelled),
        result = work => result,
    }
}

/// The phone key's raw signature of `transcript`. A hardware key may block (a prompt),
/// so it signs off the async threads.
async fn sign(signer: &Arc<dyn Signer>, transcript: Vec<u8>) -> Result<[u8; 64], UnlockError> {
    let signer = signer.clone();
    let der = tokio::task::spawn_blocking(move || signer.sign(&transcript))
        .await
        .map_err(|e| UnlockError::Internal {
            reason: format!("the signing task failed: {e}"),
        })??;
    der_to_raw(&der).map_err(|_| {
        UnlockError::Signer(SignerError::SigningFailed {
            reason: "the phone key returned a malformed signature".into(),
        })
    })
}

/// The machine's answer as the app sees it: a second "unknown grant" is a refusal.
fn settle(outcome: proto::UnlockOutcome) -> UnlockOutcome {
    match outcome {
        proto::UnlockOutcome::Unlocked {
            relock_after_s,
            usage_session,
        } => UnlockOutcome::Unlocked {
            relock_after_s,
            usage_session,
        },
        proto::UnlockOutcome::Locked { usage_session } => UnlockOutcome::Locked { usage_session },
        proto::UnlockOutcome::Denied(reason) => UnlockOutcome::Denied {
            reason: DenyReason::from(reason),
        },
        proto::UnlockOutcome::UnknownGrant => UnlockOutcome::Denied {
            reason: DenyReason::UnknownGrant,
        },
    }
}

fn phone_error(e: proto::UnlockError, plan: &Plan) -> UnlockError {
    use proto::UnlockError as P;
    let machine_id = plan.machine_id.clone();
    match e {
        P::FakeMachine => UnlockError::FakeMachine { machine_id },
        P::WrongMachine => UnlockError::WrongMachine { machine_id },
        P::BadMachinePublicKey => UnlockError::MachineKeyUnknown { machine_id },
        P::GrantUnusable(_) => UnlockError::GrantExpired {
            machine_id,
            key_id: plan.key_id.clone(),
        },
        P::Decode(_)
        | P::UnexpectedMessage { .. }
        | P::ExpiredHello
        | P::BadMachineEphemeralKey
        | P::BadResultCiphertext
        | P::ResultDoesNotMatchCommand { .. } => UnlockError::BadAnswer {
            reason: e.to_string(),
        },
        P::SignatureByAnotherKey => UnlockError::Signer(SignerError::SigningFailed {
            reason: "the phone key is not the one this credential was issued to; re-enroll".into(),
        }),
        P::BadGrant(_)
        | P::BadRevocations(_)
        | P::RevocationsForAnotherMachine
        | P::Encode(_)
        | P::Rng
        | P::RequestTooLarge { .. }
        | P::OutOfTurn => UnlockError::Internal {
            reason: e.to_string(),
        },
    }
}
