//! Cancelling a sync or a redeem from the app: a [`CancelToken`] the app keeps and
//! cancels (a "Cancel" button, a screen going away), because Swift task cancellation does
//! not reach Rust.
//!
//! Owns the token and the one rule of where a cancel may land: only while the core waits
//! on the network, never while it writes the store. A cancelled operation therefore
//! leaves the store as it was. This module never performs I/O and never touches the
//! store.

use crate::error::Error;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// A cancel handle: cheap to clone, every clone shares one state. Once cancelled it
/// stays cancelled; use a new token for the next operation.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    wake: Notify,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the operation holding this token to stop. Idempotent; callable from any
    /// thread.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub async fn cancelled(&self) {
        loop {
            let woken = self.inner.wake.notified();
            tokio::pin!(woken);
            // Registered before the check, so a cancel between the check and the await
            // still wakes us.
            woken.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            woken.await;
        }
    }

    /// Runs `wait` (network waiting only: it must not write the store) unless the token
    /// is cancelled first; then `wait` is dropped at its current await point and the
    /// answer is [`Error::Cancelled`].
    pub(crate) async fn unless_cancelled<T>(
        &self,
        wait: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.check()?;
        tokio::select! {
            biased;
            () = self.cancelled() => Err(Error::Cancelled),
            answer = wait => answer,
        }
    }

    /// [`Error::Cancelled`] if the token is cancelled: the last look before a commit.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_clone_sees_the_cancel_and_waiters_wake() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        let waiter = tokio::spawn({
            let t = token.clone();
            async move { t.cancelled().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        clone.cancel();
        clone.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(token.is_cancelled());
        // Already cancelled: completes at once.
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn work_is_stopped_at_its_await_point_when_the_token_is_cancelled() {
        let token = CancelToken::new();
        let cancel = {
            let t = token.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t.cancel();
            }
        };
        let hang = token.unless_cancelled(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        });
        let (answer, ()) = tokio::join!(hang, cancel);
        assert_eq!(answer, Err(Error::Cancelled));
    }

    #[tokio::test]
    async fn work_never_starts_under_a_token_cancelled_beforehand() {
        let token = CancelToken::new();
        token.cancel();
        let started = AtomicBool::new(false);
        let answer = token
            .unless_cancelled(async {
                started.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert_eq!(answer, Err(Error::Cancelled));
        assert!(!started.load(Ordering::SeqCst));
    }
}
