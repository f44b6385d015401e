//! Stories of the phone core against a fake backend.

mod cancel;
mod events;
mod fake;
mod invites;
mod logs;
mod outbox;
mod redeem;
mod sim;
mod store;
mod sync;
mod unlock;

use fake::Fake;
use opkey_core::{CoreConfig, MemorySecretStore, OpKey, RetryPolicy, SecretStore};
use opkey_protocol::Clock;
use opkey_protocol::clock::ManualClock;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

/// The instant the stories happen at.
pub const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

pub fn config(dir: &Path) -> CoreConfig {
    let mut c = CoreConfig::new(dir);
    c.allow_loopback_invites = true;
    c.invite_hosts = vec!["invite.opkey.example".into()];
    c.device_name = "Test phone".into();
    c.retry = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    c.request_timeout = Duration::from_secs(5);
    c
}

/// A phone: its data dir, secret store and clock.
#[derive(Debug)]
pub struct Phone {
    pub dir: tempfile::TempDir,
    pub secrets: Arc<MemorySecretStore>,
    pub clock: Arc<dyn Clock>,
}

impl Phone {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            secrets: Arc::new(MemorySecretStore::new()),
            clock,
        }
    }

    pub fn config(&self) -> CoreConfig {
        config(self.dir.path())
    }

    pub fn open(&self) -> OpKey {
        self.open_with(self.config())
    }

    pub fn open_with(&self, config: CoreConfig) -> OpKey {
        OpKey::open(
            config,
            self.secrets.clone() as Arc<dyn SecretStore>,
            None,
            self.clock.clone(),
        )
        .unwrap()
    }
}

pub fn manual(at: OffsetDateTime) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at))
}

/// A fake backend at T0 and a phone whose clock agrees with it.
pub async fn backend_and_phone() -> (Fake, Phone) {
    let clock = manual(T0);
    let fake = Fake::start(clock.clone()).await;
    (fake, Phone::new(clock))
}

/// `backend_and_phone`, with the phone enrolled as Ann.
pub async fn enrolled() -> (Fake, Phone, OpKey) {
    let (fake, phone) = backend_and_phone().await;
    let op = phone.open();
    let (link, _) = fake.invite(fake::OPERATOR);
    op.redeem_invite(&link).await.unwrap();
    (fake, phone, op)
}
