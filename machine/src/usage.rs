//! The usage log: one entry per unlock, from the relay going on to its going off, with who
//! opened the machine. It is persisted with the machine state, so what the log says
//! survives a restart; it never holds a grant, a key or a phone number.

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

/// The sessions, oldest first. At most the last one is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageLog {
    sessions: Vec<UsageSession>,
}

impl UsageLog {
    pub(crate) fn from_sessions(sessions: Vec<UsageSession>) -> Self {
        Self { sessions }
    }

    pub fn sessions(&self) -> &[UsageSession] {
        &self.sessions
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
