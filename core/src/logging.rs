//! Log forwarding: the core logs with `tracing`; the apps hand its lines to logcat or
//! os_log through a [`LogSink`] they implement.
//!
//! Owns the process-wide forwarder (a `tracing` subscriber installed once) and the
//! current sink and level. Only events of the OpKey crates (targets `opkey…`) are
//! forwarded: they are the lines audited to carry ids, counts and durations, never a
//! token, a code, a key, a signature or a seed. This module must never add anything
//! secret to a record, never call the sink under a lock, and never let a failing sink
//! (a panic, a sink that logs in turn) break the code that logged.

use crate::error::Error;
use serde::Serialize;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// How much to forward: a level lets through itself and everything more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One log line of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub level: LogLevel,
    /// The Rust module that logged, e.g. `opkey_core::sync`.
    pub target: String,
    /// The event's message followed by its fields as ` key=value`.
    pub message: String,
}

/// Implemented by the app. May be called from any thread, at any time after
/// [`install_log_sink`]; it should not block.
pub trait LogSink: Send + Sync {
    fn log(&self, record: LogRecord);
}

/// Forwards the core's logs at `max_level` and more severe to `sink`.
///
/// The first call installs the process-wide forwarder (a `tracing` subscriber); later
/// calls replace the sink and level. Fails with [`Error::Internal`] only if someone else
/// already set a global `tracing` subscriber in this process.
pub fn install_log_sink(sink: Arc<dyn LogSink>, max_level: LogLevel) -> Result<(), Error> {
    static INSTALLED: OnceLock<Result<Arc<Forwarder>, String>> = OnceLock::new();
    let forwarder = INSTALLED.get_or_init(|| {
        let forwarder = Arc::new(Forwarder::default());
        let subscriber = tracing_subscriber::registry().with(ForwardLayer(forwarder.clone()));
        tracing::subscriber::set_global_default(subscriber)
            .map(|()| forwarder)
            .map_err(|e| e.to_string())
    });
    match forwarder {
        Ok(forwarder) => {
            forwarder.set(sink, max_level);
            Ok(())
        }
        Err(reason) => Err(Error::Internal {
            reason: format!("logs cannot be forwarded: another logger was installed first ({reason})"),
        }),
    }
}

/// The current sink and level.
#[derive(Default)]
struct Forwarder {
    sink: RwLock<Option<Arc<dyn LogSink>>>,
    /// 0: nothing; else `LogLevel as u8 + 1`.
    level: AtomicU8,
}

impl Forwarder {
    fn set(&self, sink: Arc<dyn LogSink>, max_level: LogLevel) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        self.level.store(max_level as u8 + 1, Ordering::SeqCst);
        // `tracing` caches each call site's verdict and the highest level anyone
        // wants: ask again under the new level.
        tracing::callsite::rebuild_interest_cache();
    }

    fn max_level(&self) -> Option<LogLevel> {
        match self.level.load(Ordering::SeqCst) {
            1 => Some(LogLevel::Error),
            2 => Some(LogLevel::Warn),
            3 => Some(LogLevel::Info),
            4 => Some(LogLevel::Debug),
            5 => Some(LogLevel::Trace),
            _ => None,
        }
    }

    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        ours(metadata.target()) && self.max_level().is_some_and(|max| level(metadata.level()) <= max)
    }

    fn sink(&self) -> Option<Arc<dyn LogSink>> {
        self.sink.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The OpKey crates: `opkey_core`, `opkey_protocol`, `opkey_ffi`, …
fn ours(target: &str) -> bool {
    target.starts_with("opkey")
}

fn level(level: &Level) -> LogLevel {
    match *level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        Level::TRACE => LogLevel::Trace,
    }
}

thread_local! {
    /// Set while this thread is inside the sink: a sink that logs is not fed its own
    /// lines (that would loop).
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

struct ForwardLayer(Arc<Forwarder>);

impl<S: Subscriber> Layer<S> for ForwardLayer {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if !ours(metadata.target()) {
            Interest::never()
        } else if self.0.wants(metadata) {
            Interest::always()
        } else {
            // Not now; the level may change later (the cache is rebuilt then).
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.0.wants(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.0.max_level() {
            None => LevelFilter::OFF,
            Some(LogLevel::Error) => LevelFilter::ERROR,
            Some(LogLevel::Warn) => LevelFilter::WARN,
            Some(LogLevel::Info) => LevelFilter::INFO,
            Some(LogLevel::Debug) => LevelFilter::DEBUG,
            Some(LogLevel::Trace) => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if !self.0.wants(metadata) || IN_SINK.get() {
            return;
        }
        let Some(sink) = self.0.sink() else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let record = LogRecord {
            level: level(metadata.level()),
            target: metadata.target().to_owned(),
            message: text.message + &text.fields,
        };
        IN_SINK.set(true);
        // A sink that panics loses its line, not the caller's work.
        let _ = catch_unwind(AssertUnwindSafe(|| sink.log(record)));
        IN_SINK.set(false);
    }
}

/// An event's message and its other fields as ` key=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<LogRecord>>);

    impl LogSink for Collect {
        fn log(&self, record: LogRecord) {
            self.0.lock().unwrap().push(record);
        }
    }

    /// A forwarder for this thread only (the process-wide one is tried once, below).
    fn scoped(sink: Arc<dyn LogSink>, max_level: LogLevel, f: impl FnOnce()) {
        let forwarder = Arc::new(Forwarder::default());
        forwarder.set(sink, max_level);
        let subscriber = tracing_subscriber::registry().with(ForwardLayer(forwarder));
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn a_line_reaches_the_sink_with_its_fields_as_key_value() {
        let sink = Arc::new(Collect::default());
        scoped(sink.clone(), LogLevel::Info, || {
            let path = "/v1/sync";
            tracing::info!(phone_id = "phn_1", pages = 3, %path, "sync applied");
        });
        let records = sink.0.lock().unwrap();
        assert_eq!(
            *records,
            [LogRecord {
                level: LogLevel::Info,
                target: "opkey_core::logging::tests".into(),
                message: "sync applied phone_id=phn_1 pages=3 path=/v1/sync".into(),
            }]
        );
    }

    #[test]
    fn lines_below_the_chosen_level_and_from_other_crates_stay_out() {
        let sink = Arc::new(Collect::default());
        scoped(sink.clone(), LogLevel::Warn, || {
            tracing::error!("disk full");
            tracing::warn!("retrying");
            tracing::info!("sync applied");
            tracing::debug!("request ok");
            tracing::warn!(target: "hyper::proto", "a dependency's line");
        });
        let levels: Vec<LogLevel> = sink.0.lock().unwrap().iter().map(|r| r.level).collect();
        assert_eq!(levels, [LogLevel::Error, LogLevel::Warn]);
    }

    struct Faulty;

    impl LogSink for Faulty {
        fn log(&self, record: LogRecord) {
            tracing::error!("the sink logs too");
            panic!("sink broke on {}", record.message);
        }
    }

    #[test]
    fn a_sink_that_panics_or_logs_does_not_break_the_code_that_logged() {
        scoped(Arc::new(Faulty), LogLevel::Trace, || {
            tracing::info!("first");
            tracing::info!("second");
        });
    }

    #[test]
    fn a_logger_installed_by_someone_else_is_reported_not_replaced() {
        // This test binary has no other global subscriber, and no other test installs one.
        tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
        let err = install_log_sink(Arc::new(Collect::default()), LogLevel::Info).unwrap_err();
        assert!(matches!(err, Error::Internal { .. }), "{err:?}");
        assert!(err.to_string().contains("another logger was installed first"));
    }
}
