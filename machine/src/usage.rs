//! The usage log: one entry per unlock, from the relay going on to its going off, with who
//! opened the machine, and how far the backend has acknowledged it (`uploaded_through`).
//! It is persisted with the machine state, so what the log says survives a restart; it
//! never holds a grant, a key or a phone number.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Sessions kept; the oldest leave first (a real unit uploads and trims them).
pub const USAGE_LOG_CAPACITY: usize = 4096;

/// Why a usage session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// Not started within `relock_after_s`: auto-relock.
    Timeout,
    /// A phone sent the lock command.
    Command,
    /// The engine, started in this session, stopped.
    EngineStopped,
    /// Another unlock began a new session while this one was open.
    NextUnlock,
    /// The machine restarted with the session open (the relay is off after a restart).
    Restart,
}

impl SessionEnd {
    /// The name the backend stores (`ended_by`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Timeout => "timeout",
            SessionEnd::Command => "command",
            SessionEnd::EngineStopped => "engine_stopped",
            SessionEnd::NextUnlock => "next_unlock",
            SessionEnd::Restart => "restart",
        }
    }
}

/// One unlock's stay, as the backend's usage events want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSession {
    pub usage_session: u32,
    pub key_id: String,
    /// The operator of a personal key; `None` for a non-personal key.
    pub operator_id: Option<String>,
    pub machine_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// `None` while open, and for a session a restart interrupted (the time is unknown).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub ended_by: Option<SessionEnd>,
}

impl UsageSession {
    pub fn is_open(&self) -> bool {
        self.ended_by.is_none()
    }
}

/// The sessions, oldest first. At most the last one is open. Session numbers only grow,
/// so "acknowledged" is one number: every session up to `uploaded_through` reached the
/// backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageLog {
    sessions: Vec<UsageSession>,
    uploaded_through: u32,
}

impl UsageLog {
    pub(crate) fn from_sessions(sessions: Vec<UsageSession>, uploaded_through: u32) -> Self {
        Self {
            sessions,
            uploaded_through,
        }
    }

    pub fn sessions(&self) -> &[UsageSession] {
        &self.sessions
    }

    /// The highest session number the backend acknowledged (0 for none).
    pub fn uploaded_through(&self) -> u32 {
        self.uploaded_through
    }

    /// Closed sessions the backend has not acknowledged yet, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &UsageSession> {
        self.sessions
            .iter()
            .filter(|s| !s.is_open() && s.usage_session > self.uploaded_through)
    }

    /// Marks every session up to `upto` as delivered; false when nothing changed. Only
    /// closed sessions in the log can be acknowledged: `upto` stops at the last of them, so
    /// a session that is open or yet to come stays pending.
    pub(crate) fn acknowledge(&mut self, upto: u32) -> bool {
        let last_closed = self
            .sessions
            .iter()
            .rev()
            .find(|s| !s.is_open())
            .map_or(0, |s| s.usage_session);
        let upto = upto.min(last_closed);
        if upto <= self.uploaded_through {
            return false;
        }
        self.uploaded_through = upto;
        true
    }

    /// The session in progress, if the relay is on.
    pub fn open_session(&self) -> Option<&UsageSession> {
        self.sessions.last().filter(|s| s.is_open())
    }

    /// Ends the open session, if any; returns its number.
    pub(crate) fn end(&mut self, at: Option<OffsetDateTime>, by: SessionEnd) -> Option<u32> {
        let session = self.sessions.last_mut().filter(|s| s.is_open())?;
        session.ended_at = at;
        session.ended_by = Some(by);
        Some(session.usage_session)
    }

    pub(crate) fn start(&mut self, session: UsageSession) {
        self.sessions.push(session);
        if self.sessions.len() > USAGE_LOG_CAPACITY {
            let excess = self.sessions.len() - USAGE_LOG_CAPACITY;
            self.sessions.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_the_backend_stores_is_the_serialized_one() {
        for end in [
            SessionEnd::Timeout,
            SessionEnd::Command,
            SessionEnd::EngineStopped,
            SessionEnd::NextUnlock,
            SessionEnd::Restart,
        ] {
            assert_eq!(
                serde_json::to_value(end).unwrap(),
                serde_json::Value::from(end.as_str())
            );
        }
    }
}
