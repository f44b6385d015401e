//! The HTTP gateway: one POST per message to a provider, body rendered from a template
//! with `{to}` and `{body}` escaped for the content type. Credentials travel only in the
//! configured header and never reach a log or an error message.

use super::{SmsError, SmsFuture, SmsGateway};
use crate::config::HttpSmsConfig;
use crate::error::ServerError;
use opkey_protocol::api::SmsMessage;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use std::time::Duration;

/// How long one provider request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpGateway {
    config: HttpSmsConfig,
    auth: Option<(HeaderName, HeaderValue)>,
    content_type: HeaderValue,
    client: reqwest::Client,
}

impl HttpGateway {
    pub fn new(config: HttpSmsConfig) -> Result<Self, ServerError> {
        let auth = match &config.auth_header {
            Some((name, value)) => {
                let name = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| ServerError::Config(format!("'{name}' is not a valid HTTP header name")))?;
                let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                    ServerError::Config(format!(
                        "the value of SMS header {name} is not a valid header value"
                    ))
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
            None => None,
        };
        let content_type = HeaderValue::from_str(&config.content_type).map_err(|_| {
            ServerError::Config(format!("'{}' is not a valid content type", config.content_type))
        })?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ServerError::Config(format!("cannot build the SMS HTTP client: {e}")))?;
        Ok(Self {
            config,
            auth,
            content_type,
            client,
        })
    }

    /// The request body for one message.
    pub fn render(&self, message: &SmsMessage) -> String {
        render_template(
            &self.config.body_template,
            &self.config.content_type,
            message.recipient.as_str(),
            &message.body,
        )
    }
}

impl SmsGateway for HttpGateway {
    fn send<'a>(&'a self, message: &'a SmsMessage) -> SmsFuture<'a> {
        Box::pin(async move {
            let mut request = self
                .client
                .post(self.config.url.clone())
                .header(CONTENT_TYPE, self.content_type.clone())
                .body(self.render(message));
            if let Some((name, value)) = &self.auth {
                request = request.header(name.clone(), value.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| SmsError::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(SmsError::Rejected {
                    status: status.as_u16(),
                })
            }
        })
    }
}

/// Escapes one placeholder value for the body's content type.
fn escape(value: &str, content_type: &str) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/x-www-form-urlencoded" {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    } else if essence == "application/json" || essence.ends_with("+json") {
        let quoted = serde_json::Value::String(value.to_owned()).to_string();
        quoted[1..quoted.len() - 1].to_owned()
    } else {
        value.to_owned()
    }
}

/// Replaces `{to}` and `{body}` in one pass, so a value that itself contains a
/// placeholder is left alone.
fn render_template(template: &str, content_type: &str, to: &str, body: &str) -> String {
    let mut out = String::with_capacity(template.len() + body.len() + to.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{to}") {
            out.push_str(&escape(to, content_type));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{body}") {
            out.push_str(&escape(body, content_type));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_SMS_BODY_TEMPLATE;

    #[test]
    fn json_bodies_escape_quotes_and_newlines() {
        let body = render_template(
            DEFAULT_SMS_BODY_TEMPLATE,
            "application/json",
            "+4512345678",
            "Hi \"Ann\"\nline {to}",
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["to"], "+4512345678");
        assert_eq!(parsed["text"], "Hi \"Ann\"\nline {to}");
    }

    #[test]
    fn form_bodies_are_url_encoded() {
        let body = render_template(
            "To={to}&Body={body}",
            "application/x-www-form-urlencoded; charset=utf-8",
            "+4512345678",
            "code ABCD-EFGH & more",
        );
        assert_eq!(body, "To=%2B4512345678&Body=code+ABCD-EFGH+%26+more");
    }
}
