//! The one tokio runtime of the bindings, owned by Rust: two workers, built on first
//! use. Every async export runs its work here, so it needs nothing from the caller's
//! executor (Kotlin coroutines, Swift tasks) beyond polling a finished `JoinHandle`.
//!
//! Owns the [`run`] rule too: when the foreign side stops waiting (a Kotlin coroutine is
//! cancelled and UniFFI drops the future), the work's [`CancelToken`] is cancelled, so
//! the core stops at its next network wait and leaves the store as it was.

use crate::error::OpKeyError;
use opkey_core::CancelToken;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

/// An error an async export throws; the runtime reports its own failures through it.
pub(crate) trait Internal {
    fn internal(reason: String) -> Self;
}

impl Internal for OpKeyError {
    fn internal(reason: String) -> Self {
        OpKeyError::Internal { reason }
    }
}

fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("opkey-ffi")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| format!("the async runtime could not start: {reason}"))
}

/// Runs `work` on the runtime and waits for it from whichever executor polls this.
pub(crate) async fn run<T, E, F>(
    cancel: CancelToken,
    work: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, F>
where
    T: Send + 'static,
    E: Into<F> + Send + 'static,
    F: Internal,
{
    let handle = runtime().map_err(F::internal)?.spawn(work);
    let on_drop = CancelOnDrop(Some(cancel));
    let outcome = handle.await;
    on_drop.disarm();
    match outcome {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(F::internal(if e.is_panic() {
            format!("the operation panicked: {}", panic_message(e.into_panic()))
        } else {
            "the operation was stopped".to_owned()
        })),
    }
}

/// Cancels the token unless disarmed: the foreign side dropped the future mid-way.
struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn when_the_app_stops_waiting_the_work_is_told_to_cancel() {
        let token = CancelToken::new();
        let work = {
            let token = token.clone();
            async move {
                token.cancelled().await;
                Err::<(), _>(OpKeyError::Cancelled {
                    reason: "cancelled".into(),
                })
            }
        };
        let waited = block_on(async {
            tokio::time::timeout(
                Duration::from_millis(50),
                run::<_, _, OpKeyError>(token.clone(), work),
            )
            .await
        });
        assert!(
            waited.is_err(),
            "the work cannot finish before its token is cancelled"
        );
        assert!(token.is_cancelled());
    }

    #[test]
    fn finished_work_leaves_its_token_alone_and_a_panic_is_an_internal_error() {
        let token = CancelToken::new();
        let answer: Result<_, OpKeyError> = block_on(run(token.clone(), async { Ok::<_, OpKeyError>(7) }));
        assert_eq!(answer, Ok(7));
        assert!(!token.is_cancelled());

        let panicked: Result<(), OpKeyError> = block_on(run(CancelToken::new(), async {
            if true {
                panic!("broken invariant");
            }
            Ok::<(), OpKeyError>(())
        }));
        assert!(
            matches!(&panicked, Err(OpKeyError::Internal { reason }) if reason.contains("broken invariant")),
            "{panicked:?}"
        );
    }
}
