//! SMS: the invitation text and the [`SmsGateway`] trait that delivers it. Two gateways
//! ship: `dev::DevGateway` keeps messages in the database's outbox for anyone running
//! the server locally to read, `http::HttpGateway` posts them to a real provider.
//!
//! Message bodies carry invite links and codes: this module never logs a body, only
//! message ids.

pub(crate) mod dev;
pub(crate) mod http;

use opkey_protocol::api::SmsMessage;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use time::OffsetDateTime;
use time::macros::format_description;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS provider answered HTTP {status}")]
    Rejected { status: u16 },
    #[error("the SMS provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the SMS request could not be built: {0}")]
    Request(String),
    #[error("the dev outbox could not store the message: {0}")]
    Outbox(String),
}

/// What [`SmsGateway::send`] returns.
pub type SmsFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SmsError>> + Send + 'a>>;

/// Delivers one text message. A real provider plugs in by implementing this.
pub trait SmsGateway: Send + Sync + Debug {
    /// Sends `message.body` to `message.recipient`; `message.id` names it in logs.
    fn send<'a>(&'a self, message: &'a SmsMessage) -> SmsFuture<'a>;

    /// True when sent messages can be read back with `GET /admin/v1/sms`.
    fn keeps_outbox(&self) -> bool {
        false
    }
}

/// The invitation an operator receives.
pub fn invite_text(
    operator_name: &str,
    organization_name: &str,
    link: &str,
    code_display: &str,
    expires_at: OffsetDateTime,
) -> String {
    let date = utc_minute(expires_at);
    format!(
        "Hi {operator_name}, {organization_name} has invited you to OpKey for your machine keys. \
         Open {link} on your phone, or enter code {code_display} in the app. Expires {date}."
    )
}

/// A time as people read it in an invitation: `2026-01-12 09:00 UTC`.
pub(crate) fn utc_minute(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_invitation_names_the_operator_the_organization_the_link_and_the_code() {
        let text = invite_text(
            "Ann",
            "Acme Rental",
            "https://opkey.example/i/abc",
            "ABCD-EFGH-JKM",
            datetime!(2026-03-01 12:30 +01:00),
        );
        assert_eq!(
            text,
            "Hi Ann, Acme Rental has invited you to OpKey for your machine keys. Open \
             https://opkey.example/i/abc on your phone, or enter code ABCD-EFGH-JKM in the app. \
             Expires 2026-03-01 11:30 UTC."
        );
    }
}
