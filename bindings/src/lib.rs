//! # opkey-ffi
//!
//! The UniFFI face of [`opkey_core`] for the Kotlin (Android) and Swift (iOS) shells.
//! Thin: it wraps the core's types in `Arc` objects, records and enums and holds no
//! logic of its own. The generated bindings come from the built library
//! (`bindings/generate`, with this crate's own `uniffi-bindgen`).
//!
//! | module | owns | never |
//! |---|---|---|
//! | this file | the [`OpKey`] object and [`erase_local_data`] | decides anything the core should |
//! | [`config`] | [`OpKeyConfig`] | performs I/O |
//! | [`error`] | [`OpKeyError`] (thrown by exports), [`PlatformError`] (thrown by the shells) | carries a secret |
//! | [`platform`] | the foreign [`SecretStore`] and [`Signer`] | sees a hardware key's private part |
//! | [`guide`] | [`HomeGuide`], [`KeyGuide`], [`UnlockErrorGuide`]: what the apps tell the operator | decides anything (the core does) |
//! | [`events`] | [`ChangeListener`], [`ChangeSubscription`], [`SyncProgressListener`] | blocks the thread that changed something |
//! | [`cancel`] | [`CancelHandle`] | |
//! | [`pin`] | [`PinView`], [`StaticPin`], [`ClockStatus`], [`PinError`], the foreign [`PinListener`] and its [`PinWatch`] | logs a PIN |
//! | [`logging`] | the foreign [`Logger`], [`install_logger`] | forwards a secret |
//! | `android` (Android only) | the JNI `initTls` that gives the certificate verifier the app's Context | |
//! | `runtime` | the one tokio runtime every async export runs on | uses the caller's executor |
//! | [`records`] | the records and enums the apps show | holds a secret |
//! | [`transport`] | the foreign [`BleTransport`] (the platform's Bluetooth) and its adapter | knows what a fragment means |
//! | [`unlock`] | [`UnlockReport`], [`UnlockError`], [`UsageEvent`] | decides an outcome |
//!
//! Foreign calls (secret store, signer, transport, listener, logger) may arrive on any Rust
//! thread. Every error a foreign implementation throws becomes a typed error; none is a
//! panic.

#[cfg(target_os = "android")]
mod android;
pub mod cancel;
pub mod config;
pub mod error;
pub mod events;
pub mod guide;
pub mod logging;
pub mod pin;
pub mod platform;
pub mod records;
mod runtime;
pub mod transport;
pub mod unlock;

pub use cancel::CancelHandle;
pub use config::OpKeyConfig;
pub use error::{InviteProblem, OpKeyError, PlatformError};
pub use events::{ChangeEvent, ChangeListener, ChangeSubscription, SyncProgressListener};
pub use guide::{
    Blocker, BluetoothState, HomeGuide, KeyAction, KeyGuide, Stage, UnlockErrorGuide, deny_reason_message,
    unlock_error_guide,
};
pub use logging::{LogLevel, LogRecord, Logger, install_logger};
pub use pin::{ClockStatus, PinError, PinListener, PinStopReason, PinView, PinWatch, StaticPin};
pub use platform::{SecretStore, Signer};
pub use records::{
    AccessType, Enrollment, InviteForm, Key, KeyState, Keypad, Machine, Operator, Organization, ParsedInvite,
    RollingPinSettings, Status, SyncProgress, SyncReport, TelematicsUnit,
};
pub use transport::{Advertisement, BleConnection, BleTransport, TransportError};
pub use unlock::{
    DenyReason, MachineCommand, UnlockError, UnlockOutcome, UnlockReport, UsageEvent, UsageEventKind,
};

use opkey_core::{CancelToken, CoreConfig};
use platform::{ForeignSecretStore, ForeignSigner};
use std::sync::Arc;
use std::time::SystemTime;
use transport::ForeignTransport;

uniffi::setup_scaffolding!();

/// The phone's OpKey: one per data directory, shared by the whole app.
#[derive(Debug, uniffi::Object)]
pub struct OpKey {
    core: Arc<opkey_core::OpKey>,
}

#[uniffi::export]
impl OpKey {
    /// Opens (creating if needed) the encrypted store in `config.data_dir`, with the data
    /// key kept in `secret_store`. `signer`: the platform's P-256 key (Keystore, Secure
    /// Enclave); null uses a software key sealed in the store.
    #[uniffi::constructor(default(signer = None))]
    pub fn new(
        config: OpKeyConfig,
        secret_store: Arc<dyn SecretStore>,
        signer: Option<Arc<dyn Signer>>,
    ) -> Result<Self, OpKeyError> {
        let core = opkey_core::OpKey::open(
            config.try_into()?,
            Arc::new(ForeignSecretStore(secret_store)),
            signer.map(|s| Arc::new(ForeignSigner(s)) as Arc<dyn opkey_core::Signer>),
            Arc::new(opkey_protocol::SystemClock),
        )?;
        Ok(Self { core: Arc::new(core) })
    }

    /// Reads an invite link or code without using the network.
    pub fn parse_invite(&self, input: String) -> Result<ParsedInvite, OpKeyError> {
        Ok(self.core.parse_invite(&input)?.into())
    }

    /// Redeems an invite link or code and records the enrollment. Safe to call again
    /// with the same input after a network failure; a cancelled redeem can be redeemed
    /// again.
    #[uniffi::method(default(cancel = None))]
    pub async fn redeem_invite(
        &self,
        input: String,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Enrollment, OpKeyError> {
        let core = self.core.clone();
        let token = token(cancel);
        runtime::run(token.clone(), async move {
            core.redeem_invite_cancellable(&input, &token)
                .await
                .map(Enrollment::from)
        })
        .await
    }

    /// Finishes a redeem that was interrupted (`Status.pending_invite`). `NotEnrolled`
    /// when none is pending.
    pub async fn resume_redeem(&self) -> Result<Enrollment, OpKeyError> {
        let core = self.core.clone();
        runtime::run(CancelToken::new(), async move {
            core.resume_redeem().await.map(Enrollment::from)
        })
        .await
    }

    /// Brings the keys up to date; on any error (or a cancel) the store is as it was.
    #[uniffi::method(default(cancel = None, progress = None))]
    pub async fn sync(
        &self,
        cancel: Option<Arc<CancelHandle>>,
        progress: Option<Arc<dyn SyncProgressListener>>,
    ) -> Result<SyncReport, OpKeyError> {
        let core = self.core.clone();
        let token = token(cancel);
        runtime::run(token.clone(), async move {
            let on_progress = move |p: opkey_core::SyncProgress| {
                if let Some(listener) = &progress {
                    let _ = listener.on_progress(p.into());
                }
            };
            core.sync_cancellable(&token, &on_progress)
                .await
                .map(SyncReport::from)
        })
        .await
    }

    /// Every key on the phone: usable first, then by machine name. Works offline.
    pub fn keys(&self) -> Result<Vec<Key>, OpKeyError> {
        Ok(self.core.keys()?.into_iter().map(Key::from).collect())
    }

    /// One key, with its state, validity, machines and access type.
    pub fn key(&self, id: String) -> Result<Key, OpKeyError> {
        Ok(self.core.key(&id)?.into())
    }

    /// Enrollment, last sync, server-time offset and clock warning, key counts.
    pub fn status(&self) -> Result<Status, OpKeyError> {
        Ok(self.core.status()?.into())
    }

    /// The app's top screen ([`Stage`]) with its sentence, the clock warning and the sync
    /// status line. Works offline.
    pub fn home_guide(&self) -> Result<HomeGuide, OpKeyError> {
        Ok(self.core.home_guide()?.into())
    }

    /// What `key_id` is for ([`KeyAction`]) and what stops it now ([`Blocker`]), given
    /// what the shell knows about Bluetooth. Works offline.
    pub fn key_guide(&self, key_id: String, bluetooth: BluetoothState) -> Result<KeyGuide, OpKeyError> {
        Ok(self.core.key_guide(&key_id, bluetooth.into())?.into())
    }

    /// The Rolling PIN of `key_id` to type on the keypad now, with when it rotates.
    /// Works offline for the key's whole validity (server-corrected clock).
    pub fn pin(&self, key_id: String) -> Result<PinView, PinError> {
        Ok(self.core.pin(&key_id)?.into())
    }

    /// A personal Static PIN, as synced. Works offline.
    pub fn static_pin(&self, key_id: String) -> Result<StaticPin, PinError> {
        Ok(self.core.static_pin(&key_id)?.into())
    }

    /// The phone clock against the server's, with a warning when it is off by more than
    /// one step of the shortest Rolling PIN period.
    pub fn clock_status(&self) -> Result<ClockStatus, OpKeyError> {
        Ok(self.core.clock_status()?.into())
    }

    /// Calls `listener` with the PIN of `key_id` now (before returning) and at each
    /// rotation, until the returned watch is cancelled (dropping it does not stop it) or
    /// the key can no longer give a PIN (`on_stopped`).
    pub fn watch_pin(
        &self,
        key_id: String,
        listener: Arc<dyn PinListener>,
    ) -> Result<Arc<PinWatch>, PinError> {
        pin::start(&self.core, &key_id, listener)
    }

    /// The server-corrected time the core uses for key validity.
    pub fn now(&self) -> SystemTime {
        self.core.now().into()
    }

    /// Unlocks `machine_id` over `transport` with the Digital Key that opens it: checks on
    /// the phone first (no radio traffic when a key, credential or machine key is missing),
    /// then one exchange with the machine; the connection is always closed. A machine's
    /// refusal is `UnlockOutcome.Denied`; no answer is an [`UnlockError`]. Every attempt
    /// leaves a usage event ([`OpKey::usage_events`]) that the next sync uploads.
    #[uniffi::method(default(cancel = None))]
    pub async fn unlock(
        &self,
        machine_id: String,
        transport: Arc<dyn BleTransport>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<UnlockReport, UnlockError> {
        self.exchange(MachineCommand::Unlock, machine_id, transport, cancel)
            .await
    }

    /// [`OpKey::unlock`] with the lock command: the machine's relay goes off.
    #[uniffi::method(default(cancel = None))]
    pub async fn lock(
        &self,
        machine_id: String,
        transport: Arc<dyn BleTransport>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<UnlockReport, UnlockError> {
        self.exchange(MachineCommand::Lock, machine_id, transport, cancel)
            .await
    }

    /// The usage events on the phone, oldest first: those waiting for upload and those
    /// uploaded in the last 30 days.
    pub fn usage_events(&self) -> Result<Vec<UsageEvent>, OpKeyError> {
        Ok(self
            .core
            .usage_events()?
            .into_iter()
            .map(UsageEvent::from)
            .collect())
    }

    /// Calls `listener` on every change until the returned subscription is cancelled
    /// (dropping it does not cancel it) or this `OpKey` is gone.
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Arc<ChangeSubscription> {
        let subscription = self.core.subscribe(Arc::new(events::ForeignListener(listener)));
        Arc::new(subscription.into())
    }
}

impl OpKey {
    async fn exchange(
        &self,
        command: MachineCommand,
        machine_id: String,
        transport: Arc<dyn BleTransport>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<UnlockReport, UnlockError> {
        let core = self.core.clone();
        let token = token(cancel);
        let transport: Arc<dyn opkey_core::BleTransport> = Arc::new(ForeignTransport(transport));
        runtime::run(token.clone(), async move {
            let report = match command {
                MachineCommand::Unlock => core.unlock(&machine_id, transport, &token).await,
                MachineCommand::Lock => core.lock(&machine_id, transport, &token).await,
            };
            report.map(UnlockReport::from)
        })
        .await
    }
}

/// Removes this phone's local data (the store and the data key), e.g. after
/// `DataKeyMismatch`. No `OpKey` may be open on `config.data_dir`.
#[uniffi::export]
pub fn erase_local_data(config: OpKeyConfig, secret_store: Arc<dyn SecretStore>) -> Result<(), OpKeyError> {
    let config = CoreConfig::try_from(config)?;
    opkey_core::OpKey::erase_local_data(&config, &ForeignSecretStore(secret_store))?;
    Ok(())
}

fn token(cancel: Option<Arc<CancelHandle>>) -> CancelToken {
    cancel.map(|c| c.token()).unwrap_or_default()
}
