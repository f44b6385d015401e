//! How a server is set up: database file, issuer key file, bootstrap admin token, invite
//! links and lifetime, the apps that open invite links ([`AppLinks`]), the SMS gateway,
//! Digital Key timings, and the clock. Owns no behaviour; never prints secrets (the
//! `Debug` impls redact the admin token and the SMS provider's credentials; the issuer key
//! file is only ever named, never read here).

pub use crate::app_links::{AndroidApp, AppLinks, AppLinksError};
use opkey_protocol::{Clock, SystemClock};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// The default SMS body sent to an HTTP provider: JSON with the recipient and the text.
pub const DEFAULT_SMS_BODY_TEMPLATE: &str = r#"{"to":"{to}","text":"{body}"}"#;
/// The default content type of the HTTP provider's request body.
pub const DEFAULT_SMS_CONTENT_TYPE: &str = "application/json";
/// How long an invite stays redeemable unless configured otherwise.
pub const DEFAULT_INVITE_TTL: time::Duration = time::Duration::days(7);
/// The name of the organization created on first start.
pub const DEFAULT_ORGANIZATION_NAME: &str = "Default organization";
/// How long a Digital Key grant is valid; also the longest allowed (PROTOCOL.md 2.2).
pub const DEFAULT_GRANT_LIFETIME: time::Duration = time::Duration::days(7);
/// Seconds a machine's Hello challenge stays valid (PROTOCOL.md 2.6).
pub const DEFAULT_CHALLENGE_LIFETIME_S: u16 = 10;
/// Seconds after an unlock before the machine locks again unless the engine starts.
pub const DEFAULT_RELOCK_AFTER_S: u16 = 120;
/// What the default issuer key file's name adds to the database file's name.
pub const ISSUER_KEY_SUFFIX: &str = ".issuer-key";

/// Everything [`crate::start`] needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// SQLite file (created if absent).
    pub db_path: PathBuf,
    /// The bootstrap admin token: role admin, acts in the default organization unless the
    /// `x-opkey-organization` header names another.
    pub admin_token: String,
    /// Invite links are `{invite_base_url}/i/{token}`; `None` uses the server's own URL.
    pub invite_base_url: Option<Url>,
    /// Where telematics units reach this server (the `server_url` of provisioning bundles);
    /// `None` uses `invite_base_url`, then the server's own URL.
    pub public_url: Option<Url>,
    pub invite_ttl: time::Duration,
    /// The phone apps that open invite links: served as `/.well-known/assetlinks.json` and
    /// `/.well-known/apple-app-site-association`. Empty by default (both answer 404).
    pub app_links: AppLinks,
    pub sms: SmsConfig,
    pub default_organization_name: String,
    /// The backend's grant-signing key (PKCS#8, created on first start with mode 0600);
    /// `None` keeps it beside the database as `<db file name>.issuer-key`.
    pub issuer_key_path: Option<PathBuf>,
    /// How long a grant is valid (never beyond its key's end); at most 7 days.
    pub grant_lifetime: time::Duration,
    /// Given to machines in their provisioning bundle.
    pub challenge_lifetime_s: u16,
    /// Given to machines in their provisioning bundle.
    pub relock_after_s: u16,
    pub clock: Arc<dyn Clock>,
}

impl ServerConfig {
    /// A configuration with the defaults: dev SMS outbox, 7-day invites, system clock.
    pub fn new(db_path: impl Into<PathBuf>, admin_token: impl Into<String>) -> Self {
        Self {
            db_path: db_path.into(),
            admin_token: admin_token.into(),
            invite_base_url: None,
            public_url: None,
            invite_ttl: DEFAULT_INVITE_TTL,
            app_links: AppLinks::default(),
            sms: SmsConfig::Dev,
            default_organization_name: DEFAULT_ORGANIZATION_NAME.to_owned(),
            issuer_key_path: None,
            grant_lifetime: DEFAULT_GRANT_LIFETIME,
            challenge_lifetime_s: DEFAULT_CHALLENGE_LIFETIME_S,
            relock_after_s: DEFAULT_RELOCK_AFTER_S,
            clock: Arc::new(SystemClock),
        }
    }

    /// Where the issuer key lives: `issuer_key_path`, or beside the database.
    pub fn issuer_key_file(&self) -> PathBuf {
        self.issuer_key_path.clone().unwrap_or_else(|| {
            let mut name = self
                .db_path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_else(|| "opkey.db".into());
            name.push(ISSUER_KEY_SUFFIX);
            self.db_path.with_file_name(name)
        })
    }
}

impl ServerConfig {
    /// Where the secrets key (sealing PIN seeds and Static PINs) lives: beside the
    /// database as `<db file name>.secrets-key`; `None` for an in-memory database, whose
    /// key lives in memory only.
    pub fn secrets_key_file(&self) -> Option<PathBuf> {
        let text = self.db_path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
            return None;
        }
        let mut name = self
            .db_path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "opkey.db".into());
        name.push(crate::keypad::SECRETS_KEY_SUFFIX);
        Some(self.db_path.with_file_name(name))
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("db_path", &self.db_path)
            .field("admin_token", &"<redacted>")
            .field("invite_base_url", &self.invite_base_url.as_ref().map(Url::as_str))
            .field("public_url", &self.public_url.as_ref().map(Url::as_str))
            .field("invite_ttl", &self.invite_ttl)
            .field("app_links", &self.app_links)
            .field("sms", &self.sms)
            .field("default_organization_name", &self.default_organization_name)
            .field("issuer_key_path", &self.issuer_key_file())
            .field("grant_lifetime", &self.grant_lifetime)
            .field("challenge_lifetime_s", &self.challenge_lifetime_s)
            .field("relock_after_s", &self.relock_after_s)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Which SMS gateway sends invitations.
#[derive(Debug, Clone, Default)]
pub enum SmsConfig {
    /// Keep messages in the database's outbox, readable with `GET /admin/v1/sms`.
    #[default]
    Dev,
    /// POST each message to a real provider.
    Http(HttpSmsConfig),
}

/// An HTTP SMS provider: one request per message.
#[derive(Clone)]
pub struct HttpSmsConfig {
    pub url: Url,
    /// A header carrying the credentials, e.g. `("Authorization", "Bearer …")`.
    pub auth_header: Option<(String, String)>,
    pub content_type: String,
    /// The request body with `{to}` and `{body}` placeholders; the values are escaped for
    /// JSON or form encoding according to `content_type`.
    pub body_template: String,
}

impl HttpSmsConfig {
    /// A provider at `url` with the default JSON body and no credentials.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            auth_header: None,
            content_type: DEFAULT_SMS_CONTENT_TYPE.to_owned(),
            body_template: DEFAULT_SMS_BODY_TEMPLATE.to_owned(),
        }
    }
}

impl fmt::Debug for HttpSmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsConfig")
            .field("url", &self.url.as_str())
            .field(
                "auth_header",
                &self
                    .auth_header
                    .as_ref()
                    .map(|(name, _)| format!("{name}: <redacted>")),
            )
            .field("content_type", &self.content_type)
            .field("body_template", &self.body_template)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_credentials() {
        let mut config = ServerConfig::new("/tmp/x.db", "super-secret-admin-token");
        let mut http = HttpSmsConfig::new(Url::parse("https://sms.example/send").unwrap());
        http.auth_header = Some(("Authorization".into(), "Bearer provider-secret".into()));
        config.sms = SmsConfig::Http(http);
        let debug = format!("{config:?}");
        assert!(!debug.contains("super-secret-admin-token"), "{debug}");
        assert!(!debug.contains("provider-secret"), "{debug}");
        assert!(debug.contains("Authorization: <redacted>"), "{debug}");
    }

    #[test]
    fn the_issuer_key_lives_beside_the_database_unless_configured() {
        let mut config = ServerConfig::new("/var/lib/opkey/backend.db", "t");
        assert_eq!(
            config.issuer_key_file(),
            PathBuf::from("/var/lib/opkey/backend.db.issuer-key")
        );
        config.issuer_key_path = Some("/etc/opkey/issuer.pk8".into());
        assert_eq!(config.issuer_key_file(), PathBuf::from("/etc/opkey/issuer.pk8"));
    }
}
