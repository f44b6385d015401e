//! [`CancelHandle`]: how the app stops a long call (sync, redeem, unlock). Swift task
//! cancellation does not reach Rust, so the app creates a handle, passes it to the call
//! and calls `cancel()` from anywhere; the call then throws `Cancelled`
//! and the store is as it was.

use opkey_core::CancelToken;

/// A cancel button for one call. Once cancelled it stays cancelled: use a new handle
/// for the next call.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelHandle {
    token: CancelToken,
}

#[uniffi::export]
impl CancelHandle {
    #[uniffi::constructor]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the call holding this handle at its next network wait. Idempotent; any
    /// thread.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl CancelHandle {
    pub(crate) fn token(&self) -> CancelToken {
        self.token.clone()
    }
}
