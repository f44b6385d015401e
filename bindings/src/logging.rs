//! Log forwarding to the platform (logcat, os_log): the shell implements [`Logger`] and
//! installs it once with [`install_logger`]. The core only forwards lines audited to
//! carry no secret.

use crate::error::{OpKeyError, PlatformError};
use std::sync::Arc;

/// How much to forward: a level lets through itself and everything more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One log line of the core.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    pub level: LogLevel,
    /// The Rust module that logged, e.g. `opkey_core::sync` (a logcat tag).
    pub target: String,
    /// The message followed by its fields as ` key=value`.
    pub message: String,
}

/// Implemented by the app. Called from any thread; should not block. A thrown error
/// drops that line.
#[uniffi::export(foreign)]
pub trait Logger: Send + Sync {
    fn log(&self, record: LogRecord) -> Result<(), PlatformError>;
}

/// Forwards the core's log lines at `max_level` and more severe to `logger`. Call it
/// once at start-up; a later call replaces the logger and level.
#[uniffi::export]
pub fn install_logger(logger: Arc<dyn Logger>, max_level: LogLevel) -> Result<(), OpKeyError> {
    opkey_core::install_log_sink(Arc::new(ForeignLogger(logger)), max_level.into())?;
    Ok(())
}

struct ForeignLogger(Arc<dyn Logger>);

impl opkey_core::LogSink for ForeignLogger {
    fn log(&self, record: opkey_core::LogRecord) {
        let _ = self.0.log(record.into());
    }
}

impl From<LogLevel> for opkey_core::LogLevel {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => opkey_core::LogLevel::Error,
            LogLevel::Warn => opkey_core::LogLevel::Warn,
            LogLevel::Info => opkey_core::LogLevel::Info,
            LogLevel::Debug => opkey_core::LogLevel::Debug,
            LogLevel::Trace => opkey_core::LogLevel::Trace,
        }
    }
}

impl From<opkey_core::LogLevel> for LogLevel {
    fn from(l: opkey_core::LogLevel) -> Self {
        match l {
            opkey_core::LogLevel::Error => LogLevel::Error,
            opkey_core::LogLevel::Warn => LogLevel::Warn,
            opkey_core::LogLevel::Info => LogLevel::Info,
            opkey_core::LogLevel::Debug => LogLevel::Debug,
            opkey_core::LogLevel::Trace => LogLevel::Trace,
        }
    }
}

impl From<opkey_core::LogRecord> for LogRecord {
    fn from(r: opkey_core::LogRecord) -> Self {
        LogRecord {
            level: r.level.into(),
            target: r.target,
            message: r.message,
        }
    }
}
