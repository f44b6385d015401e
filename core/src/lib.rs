//! # opkey-core
//!
//! The phone side of OpKey: the operator's keys held **offline** in an encrypted store,
//! invite onboarding, and sync with the backend. The public API of this crate is the
//! surface the Kotlin and Swift shells reach through UniFFI: plain records, enums, the
//! [`OpKey`] object (usable behind `Arc`, `Send + Sync`, every method on `&self`) and
//! typed errors.
//!
//! | module | owns | never |
//! |---|---|---|
//! | [`config`] | settings | performs I/O |
//! | [`error`] | the public [`Error`] | carries a secret |
//! | [`secrets`] | the data key's [`SecretStore`], AES-GCM envelopes | logs or formats a secret |
//! | [`signer`] | the phone's P-256 key ([`Signer`], [`SoftwareSigner`]) | exposes a private key |
//! | [`store`] | `opkey.db`: the only code that talks to SQLite | writes a secret in plaintext |
//! | [`invite`] | reading links and codes, redeeming them | logs an invite secret |
//! | `sync` | the HTTP client, sessions, applying sync pages, uploading usage events | keeps a token beyond memory |
//! | [`views`] | the records the apps show | holds a secret |
//! | [`pin`] | the Rolling PIN / Static PIN views, the clock status, the rotation watch | logs or formats a PIN or seed |
//! | [`events`] | change listeners and their [`Subscription`]s | calls a listener under a lock |
//! | [`guide`] | what the apps tell the operator: top screen, what stops a key, what a failure asks | leaves a decision to the shells |
//! | [`cancel`] | the [`CancelToken`]; cancels land only while waiting on the network | touches the store |
//! | [`logging`] | forwarding `tracing` lines to the app's [`LogSink`] | forwards a secret |
//! | [`unlock`] | the Digital Key unlock over a [`BleTransport`]; one usage event per attempt | sends anything before the machine proved itself |
//!
//! Time comes from an injected [`Clock`], corrected by the server-time offset measured
//! at every exchange with the backend ([`OpKey::now`]).

pub mod cancel;
pub mod config;
pub mod error;
pub mod events;
pub mod guide;
pub mod invite;
pub mod logging;
pub mod pin;
pub mod secrets;
pub mod signer;
pub mod store;
mod sync;
pub mod unlock;
pub mod views;

pub use cancel::CancelToken;
pub use config::{CoreConfig, RetryPolicy, UnlockConfig};
pub use error::Error;
pub use events::{ChangeEvent, ChangeListener, Subscription};
pub use guide::{
    Blocker, BluetoothState, HomeGuide, KeyAction, KeyGuide, Stage, UnlockErrorGuide, UnlockProblem,
};
pub use invite::{InviteError, InviteForm, ParsedInvite};
pub use logging::{LogLevel, LogRecord, LogSink, install_log_sink};
pub use opkey_protocol::api::{ErrorCode, OperatorProfile, UsageEvent, UsageEventKind};
pub use opkey_protocol::model::RollingPinInfo;
pub use opkey_protocol::pin::PinAlgorithm;
pub use opkey_protocol::{AccessType, Clock, KeyState, Keypad, Organization, TelematicsUnit};
pub use pin::{ClockStatus, PinError, PinListener, PinUnusable, PinView, PinWatch, StaticPinView};
pub use secrets::{FileSecretStore, MemorySecretStore, SecretStore, SecretStoreError};
pub use signer::{Signer, SignerError, SoftwareSigner};
pub use store::StoreError;
pub use time::OffsetDateTime;
pub use unlock::{
    Advertisement, BleConnection, BleTransport, DenyReason, InMemoryTransport, LinkConditions,
    MachineCommand, MachineTag, SimulatedPeripheral, SocketTransport, TransportError, TransportFuture,
    TransportStats, UnlockError, UnlockOutcome, UnlockReport,
};
pub use url::Url;
pub use views::{Enrollment, KeyView, MachineView, OutboxEntry, Status, SyncProgress, SyncReport};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::{PhoneState, Store};
use sync::http::{Http, OffsetSample};
use sync::session::Session;
use zeroize::Zeroizing;

/// The phone's OpKey: one per data directory.
pub struct OpKey {
    config: CoreConfig,
    store: Mutex<Store>,
    signer: Arc<dyn Signer>,
    clock: Arc<dyn Clock>,
    /// Server time minus phone time, from the last exchange with the backend.
    offset_ms: Mutex<Option<i64>>,
    /// Built on first use, so an offline phone opens its keys without TLS set-up.
    http: OnceLock<Http>,
    session: tokio::sync::Mutex<Option<Session>>,
    /// One redeem or sync at a time.
    network: tokio::sync::Mutex<()>,
    /// One Bluetooth exchange at a time.
    radio: tokio::sync::Mutex<()>,
    listeners: events::Listeners,
}

impl fmt::Debug for OpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpKey")
            .field("data_dir", &self.config.data_dir)
            .field("server_url", &self.config.server_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl OpKey {
    /// Opens (creating if needed) the store in `config.data_dir`. `signer: None` uses
    /// the software signer, created once and kept sealed in the store so that retries
    /// and restarts use the same key.
    pub fn open(
        config: CoreConfig,
        secrets: Arc<dyn SecretStore>,
        signer: Option<Arc<dyn Signer>>,
        clock: Arc<dyn Clock>,
    ) -> Result<OpKey, Error> {
        let store = Store::open(&config.data_dir, secrets.as_ref())?;
        let signer = match signer {
            Some(signer) => signer,
            None => Arc::new(software_signer(&store)?),
        };
        let offset_ms = store.phone()?.server_offset_ms;
        Ok(OpKey {
            config,
            store: Mutex::new(store),
            signer,
            clock,
            offset_ms: Mutex::new(offset_ms),
            http: OnceLock::new(),
            session: tokio::sync::Mutex::new(None),
            network: tokio::sync::Mutex::new(()),
            radio: tokio::sync::Mutex::new(()),
            listeners: events::Listeners::default(),
        })
    }

    /// Removes this phone's local data (the store and the data key), e.g. after
    /// [`Error::DataKeyMismatch`]. No `OpKey` may be open on `config.data_dir`.
    pub fn erase_local_data(config: &CoreConfig, secrets: &dyn SecretStore) -> Result<(), Error> {
        for suffix in ["", "-wal", "-shm"] {
            let path = config.data_dir.join(format!("{}{suffix}", store::DB_FILE_NAME));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Unavailable {
                        reason: format!("{}: {e}", path.display()),
                    }
                    .into());
                }
            }
        }
        secrets.delete(secrets::DATA_KEY_NAME)?;
        Ok(())
    }

    /// Reads an invite link or code without using the network.
    pub fn parse_invite(&self, input: &str) -> Result<ParsedInvite, InviteError> {
        invite::parse::parse(&self.config, input).map(|(parsed, _secret)| parsed)
    }

    /// Redeems an invite link or code and records the enrollment. Safe to call again
    /// with the same input after a network failure.
    pub async fn redeem_invite(&self, input: &str) -> Result<Enrollment, Error> {
        invite::redeem::redeem(self, input, &CancelToken::new()).await
    }

    /// [`OpKey::redeem_invite`] that stops with [`Error::Cancelled`] when `cancel` is
    /// cancelled while the server has not answered. A cancelled redeem leaves the phone
    /// as it was, with no pending invite: the same link or code can be redeemed again.
    pub async fn redeem_invite_cancellable(
        &self,
        input: &str,
        cancel: &CancelToken,
    ) -> Result<Enrollment, Error> {
        invite::redeem::redeem(self, input, cancel).await
    }

    /// Finishes a redeem that was interrupted ([`Status::pending_invite`]).
    /// [`Error::NotEnrolled`] when none is pending.
    pub async fn resume_redeem(&self) -> Result<Enrollment, Error> {
        invite::redeem::resume(self).await
    }

    /// Brings the keys up to date: fetches every change since the last sync, then applies
    /// them in one transaction. On any error the store is as it was.
    pub async fn sync(&self) -> Result<SyncReport, Error> {
        sync::run(self, &CancelToken::new(), &|_| {}).await
    }

    pub async fn sync_with_progress(
        &self,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, Error> {
        sync::run(self, &CancelToken::new(), progress).await
    }

    /// [`OpKey::sync_with_progress`] that stops with [`Error::Cancelled`] when `cancel`
    /// is cancelled while it waits on the network. The apply is never interrupted: a
    /// cancelled sync leaves the store exactly as it was.
    pub async fn sync_cancellable(
        &self,
        cancel: &CancelToken,
        progress: &(dyn Fn(SyncProgress) + Send + Sync),
    ) -> Result<SyncReport, Error> {
        sync::run(self, cancel, progress).await
    }

    /// Calls `listener` on every [`ChangeEvent`] of this `OpKey` until the subscription
    /// is cancelled or the `OpKey` is dropped. Events may arrive on any thread.
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Subscription {
        self.listeners.subscribe(listener)
    }

    /// Unlocks `machine_id` with the Digital Key that opens it, over `transport`. Checks
    /// on the phone first (no radio traffic when the key, its credential or the machine's
    /// key is missing or out of date), then finds, connects, and runs one exchange; the
    /// connection is always closed. A machine's refusal is
    /// [`UnlockOutcome::Denied`]; no answer at all is an [`UnlockError`].
    ///
    /// Every attempt of an enrolled phone, whatever its end, leaves a usage event in the
    /// outbox before this returns; the next sync uploads it.
    pub async fn unlock(
        &self,
        machine_id: &str,
        transport: Arc<dyn BleTransport>,
        cancel: &CancelToken,
    ) -> Result<UnlockReport, UnlockError> {
        unlock::run(self, machine_id, MachineCommand::Unlock, transport, cancel).await
    }

    /// [`OpKey::unlock`] with the lock command: the machine's relay goes off.
    pub async fn lock(
        &self,
        machine_id: &str,
        transport: Arc<dyn BleTransport>,
        cancel: &CancelToken,
    ) -> Result<UnlockReport, UnlockError> {
        unlock::run(self, machine_id, MachineCommand::Lock, transport, cancel).await
    }

    /// The usage events on the phone, oldest first: those waiting for upload and those
    /// uploaded in the last 30 days.
    pub fn usage_events(&self) -> Result<Vec<OutboxEntry>, Error> {
        let rows = self.store().outbox()?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxEntry {
                uploaded_at: r
                    .uploaded_s
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
                event: r.event,
            })
            .collect())
    }

    /// Every key on the phone: usable first, then by machine name.
    pub fn keys(&self) -> Result<Vec<KeyView>, Error> {
        let now = self.now();
        Ok(self.store().keys(now)?)
    }

    pub fn key(&self, id: &str) -> Result<KeyView, Error> {
        let now = self.now();
        self.store()
            .key(id, now)?
            .ok_or_else(|| Error::KeyNotFound { id: id.to_owned() })
    }

    pub fn status(&self) -> Result<Status, Error> {
        let now = self.now();
        let (phone, organizations, (key_count, usable_key_count)) = {
            let store = self.store();
            (store.phone()?, store.organizations()?, store.key_counts(now)?)
        };
        let offset = *self.offset();
        Ok(Status {
            enrolled: phone.phone_id.is_some() && !phone.revoked,
            server_url: self.server_url(&phone),
            phone_id: phone.phone_id,
            operator: phone.operator,
            organizations,
            last_sync_at: phone.last_sync_at,
            server_offset_ms: offset,
            clock_warning: offset.and_then(views::clock_warning),
            key_count,
            usable_key_count,
            cursor: phone.cursor,
            revoked: phone.revoked,
            pending_invite: phone.pending_server_url.is_some(),
        })
    }

    /// The Rolling PIN of `key_id` to type on a keypad now (server-corrected time), with
    /// when it rotates and a clock warning. Works offline for the key's whole validity.
    pub fn pin(&self, key_id: &str) -> Result<PinView, PinError> {
        let record = self.pin_record(key_id)?;
        let offset = *self.offset();
        pin::rolling_view(&record, self.now(), offset)
    }

    /// The personal Static PIN of `key_id`, as synced. Works offline.
    pub fn static_pin(&self, key_id: &str) -> Result<StaticPinView, PinError> {
        let record = self.pin_record(key_id)?;
        pin::static_view(&record, self.now())
    }

    fn pin_record(&self, key_id: &str) -> Result<crate::store::PinKeyRecord, PinError> {
        self.store()
            .pin_key(key_id)?
            .ok_or_else(|| PinError::KeyNotFound {
                id: key_id.to_owned(),
            })
    }

    /// The phone clock against the server's (offset from the last exchange), with a
    /// warning when it is off by more than one step of the shortest Rolling PIN period.
    pub fn clock_status(&self) -> Result<ClockStatus, Error> {
        let shortest = self.store().shortest_pin_period()?;
        let offset = *self.offset();
        Ok(pin::clock_status(offset, shortest, self.now()))
    }

    /// Calls `listener` with the PIN of `key_id` now (before returning) and at each
    /// rotation, until [`PinWatch::cancel`] or this `OpKey` is dropped. A background thread
    /// wakes at each rotation (and at least once a second) and reads the injected clock.
    pub fn watch_pin(
        self: &Arc<Self>,
        key_id: &str,
        listener: Arc<dyn PinListener>,
    ) -> Result<PinWatch, PinError> {
        pin::watch(self, key_id, listener, true)
    }

    /// [`OpKey::watch_pin`] without the background thread: rotations are seen only when
    /// [`PinWatch::tick`] is called (the app's own timer, or a test's manual clock).
    pub fn watch_pin_manually(
        self: &Arc<Self>,
        key_id: &str,
        listener: Arc<dyn PinListener>,
    ) -> Result<PinWatch, PinError> {
        pin::watch(self, key_id, listener, false)
    }

    /// The server-corrected time: the injected clock plus the last measured offset.
    pub fn now(&self) -> OffsetDateTime {
        let offset = self.offset().unwrap_or(0);
        self.clock.now() + time::Duration::milliseconds(offset)
    }

    // ---- for the modules ----------------------------------------------------------

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn offset(&self) -> MutexGuard<'_, Option<i64>> {
        self.offset_ms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_offset(&self, ms: i64) {
        *self.offset() = Some(ms);
    }

    /// Never called with a lock held: listeners may call back into the `OpKey`.
    fn emit(&self, event: ChangeEvent) {
        self.listeners.emit(event);
    }

    fn http(&self) -> Result<&Http, Error> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = Http::new(&self.config, self.clock.clone())?;
        Ok(self.http.get_or_init(|| http))
    }

    /// The configured server, else the one remembered from the last redeem.
    fn server_url(&self, phone: &PhoneState) -> Option<Url> {
        self.config
            .server_url
            .clone()
            .or_else(|| phone.server_url.clone())
    }

    /// A session token for `phone_id`: the cached one while fresh, else a new session.
    async fn access_token(
        &self,
        http: &Http,
        server: &Url,
        phone_id: &str,
        best: &mut Option<OffsetSample>,
    ) -> Result<Zeroizing<String>, Error> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref()
            && session.is_fresh(server, phone_id, self.now())
        {
            return Ok(session.token());
        }
        let (session, sample) = sync::session::open(http, server, phone_id, self.signer.as_ref()).await?;
        *best = Some(OffsetSample::best(*best, sample));
        let token = session.token();
        *slot = Some(session);
        Ok(token)
    }

    async fn forget_session(&self) {
        self.session.lock().await.take();
    }
}

/// The software signer sealed in the store, created on first use.
fn software_signer(store: &Store) -> Result<SoftwareSigner, Error> {
    if let Some(pkcs8) = store.load_secret(store::SLOT_SIGNER)? {
        return Ok(SoftwareSigner::from_pkcs8(&pkcs8)?);
    }
    let (signer, pkcs8) = SoftwareSigner::generate()?;
    store.save_secret(store::SLOT_SIGNER, &pkcs8)?;
    tracing::info!("created the software phone key");
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_facade_can_be_shared_across_threads_and_its_futures_moved() {
        assert_send_sync::<OpKey>();
        let tmp = tempfile::tempdir().unwrap();
        let op = OpKey::open(
            CoreConfig::new(tmp.path()),
            Arc::new(MemorySecretStore::new()),
            None,
            Arc::new(opkey_protocol::SystemClock),
        )
        .unwrap();
        assert_send(&op.sync());
        assert_send(&op.sync_with_progress(&|_| {}));
        assert_send(&op.redeem_invite("x"));
        let cancel = CancelToken::new();
        assert_send(&op.sync_cancellable(&cancel, &|_| {}));
        assert_send(&op.redeem_invite_cancellable("x", &cancel));
        assert_send_sync::<Subscription>();
        assert_send_sync::<CancelToken>();
        assert_send(&op.resume_redeem());
        let transport: Arc<dyn BleTransport> =
            Arc::new(InMemoryTransport::new(Arc::new(opkey_protocol::SystemClock)));
        assert_send(&op.unlock("m1", transport.clone(), &cancel));
        assert_send(&op.lock("m1", transport, &cancel));
    }

    /// A platform store whose protecting key was invalidated (lock screen removed, Keystore
    /// key replaced): every load says so.
    #[derive(Debug, Default)]
    struct InvalidatedStore(MemorySecretStore);

    impl SecretStore for InvalidatedStore {
        fn load(&self, _: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
            Err(SecretStoreError::Invalidated {
                reason: "key permanently invalidated".into(),
            })
        }
        fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
            self.0.save(name, value)
        }
        fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
            self.0.delete(name)
        }
    }

    #[test]
    fn a_data_key_the_platform_can_no_longer_open_is_a_mismatch_for_an_existing_store_only() {
        let clock = || Arc::new(opkey_protocol::SystemClock);
        let tmp = tempfile::tempdir().unwrap();
        let config = || CoreConfig::new(tmp.path());
        drop(OpKey::open(config(), Arc::new(MemorySecretStore::new()), None, clock()).unwrap());
        let again = OpKey::open(config(), Arc::new(InvalidatedStore::default()), None, clock());
        assert!(matches!(again, Err(Error::DataKeyMismatch)), "{again:?}");

        let fresh = tempfile::tempdir().unwrap();
        let store = Arc::new(InvalidatedStore::default());
        OpKey::open(CoreConfig::new(fresh.path()), store.clone(), None, clock())
            .expect("a new phone makes a new data key in place of the unreadable one");
        assert!(store.0.load(secrets::DATA_KEY_NAME).unwrap().is_some());
    }
}
