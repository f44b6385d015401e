//! The invite landing page: what `GET /i/{token}` shows when an invite link opens in a
//! browser instead of the app (the app is not installed yet, or the phone did not verify
//! the app link). A pending invite gets the steps, an `opkey://invite/{token}` button and
//! the short code to type; an expired, used or withdrawn invite (410) and an unknown or
//! malformed link (404, the same page for both, so nothing tells how close a guess was)
//! say what happened and to ask the fleet admin for a new invite.
//!
//! Viewing the page only reads: it never redeems and never counts towards the redeem
//! throttle. The page is static HTML with inline CSS and no script or outside resource;
//! every value in it is escaped. It is never cached, indexed or sent as a referrer. Logs
//! name the invite id only, never the token or the code.

use crate::app::AppState;
use crate::db::{invites, operators, organizations};
use crate::error::ApiError;
use crate::sms::utc_minute;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opkey_protocol::api::InviteStatus;
use opkey_protocol::encoding::sha256_hex;
use opkey_protocol::invite::{InviteToken, ShortCode};
use std::fmt::Write as _;
use time::OffsetDateTime;

/// The custom URL scheme the app registers for invites (core/src/invite/parse.rs).
pub const APP_INVITE_SCHEME_PREFIX: &str = "opkey://invite/";
/// The landing page's content security policy: inline styles, nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// What the page shows.
enum Landing {
    Pending(PendingInvite),
    Gone(InviteStatus),
    NotFound,
    Failed,
}

/// A pending invite as the page shows it. Holds the token and the code: `Debug` hides them.
struct PendingInvite {
    token: InviteToken,
    organization: String,
    first_name: Option<String>,
    /// `ABCD-EFGH-JKM`; `None` for an invite issued before codes were kept.
    code: Option<ShortCode>,
    expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PendingInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingInvite")
            .field("token", &self.token)
            .field("organization", &self.organization)
            .field("code", &self.code)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The page an invite link opens in a browser.
#[utoipa::path(
    get, path = "/i/{token}", tag = "app links", operation_id = "invite_landing_page",
    params(("token" = String, Path, description = "the invite token from the SMS link")),
    responses(
        (status = 200, body = String, content_type = "text/html",
         description = "a pending invite: what to do, an opkey://invite/{token} button, the short code to type and when it expires"),
        (status = 404, body = String, content_type = "text/html",
         description = "no invite has this token (also for a malformed token)"),
        (status = 410, body = String, content_type = "text/html",
         description = "the invite expired, was used or was withdrawn: ask the fleet admin for a new one")
    )
)]
pub(crate) async fn page(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let token = match token.ok().and_then(|Path(t)| InviteToken::parse(&t).ok()) {
        Some(token) => token,
        None => return render(&Landing::NotFound),
    };
    let landing = match look_up(&state, token).await {
        Ok(landing) => landing,
        Err(e) => {
            tracing::error!(error = %e, "cannot show an invite landing page");
            Landing::Failed
        }
    };
    render(&landing)
}

/// Reads the invite; never changes anything.
async fn look_up(state: &AppState, token: InviteToken) -> Result<Landing, ApiError> {
    let (now, secrets) = (state.now(), state.secrets.clone());
    state
        .db
        .read(move |conn| {
            let digest = sha256_hex(token.expose().as_bytes());
            let Some(invite) = invites::by_token_digest(conn, &digest)? else {
                return Ok(Landing::NotFound);
            };
            let status = invite.status_at(now);
            tracing::info!(invite_id = %invite.id, ?status, "invite landing page shown");
            if status != InviteStatus::Pending {
                return Ok(Landing::Gone(status));
            }
            // A pending invite of a removed operator cannot be redeemed either.
            let Some(operator) = operators::get_live(conn, &invite.operator_id)? else {
                return Ok(Landing::Gone(InviteStatus::Revoked));
            };
            let organization = organizations::get(conn, &invite.organization_id)?
                .map(|o| o.name)
                .unwrap_or_default();
            let code = match invites::sealed_code(conn, &invite.id)? {
                None => None,
                Some(sealed) => {
                    let code = secrets
                        .open_invite_code(&invite.id, &sealed)
                        .and_then(|plain| ShortCode::parse(std::str::from_utf8(&plain).ok()?).ok());
                    if code.is_none() {
                        tracing::warn!(
                            invite_id = %invite.id,
                            "the invite's stored short code does not open with the secrets key \
                             (a different or replaced secrets key file?); the page asks for the SMS code"
                        );
                    }
                    code
                }
            };
            Ok(Landing::Pending(PendingInvite {
                token,
                organization,
                first_name: operator.name.split_whitespace().next().map(str::to_owned),
                code,
                expires_at: invite.expires_at,
            }))
        })
        .await
}

/// The status, headers and HTML of a page.
fn render(landing: &Landing) -> Response {
    let (status, title, body) = match landing {
        Landing::Pending(invite) => (StatusCode::OK, "You are invited", pending_body(invite)),
        Landing::Gone(InviteStatus::Expired) => (
            StatusCode::GONE,
            "This invite has expired",
            paragraphs(&[
                "Invites to OpKey last a limited time, and this one has run out.",
                "Ask your fleet admin to send you a new invite.",
            ]),
        ),
        Landing::Gone(InviteStatus::Redeemed) => (
            StatusCode::GONE,
            "This invite has already been used",
            paragraphs(&[
                "An invite sets up OpKey on one phone only, and this one has been used.",
                "If you set up this phone with it, open OpKey: your keys are there. Otherwise ask \
                 your fleet admin to send you a new invite.",
            ]),
        ),
        Landing::Gone(_) => (
            StatusCode::GONE,
            "This invite is no longer valid",
            paragraphs(&[
                "It was replaced by a newer invite or withdrawn by your fleet admin.",
                "Use the link in your newest OpKey text message, or ask your fleet admin to send \
                 you a new invite.",
            ]),
        ),
        Landing::NotFound => (
            StatusCode::NOT_FOUND,
            "This invite link is not valid",
            paragraphs(&[
                "Check that you opened the whole link from your text message, or open OpKey and \
                 type the code from the message.",
                "If it still does not work, ask your fleet admin to send you a new invite.",
            ]),
        ),
        Landing::Failed => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "OpKey cannot show this invite right now",
            paragraphs(&[
                "Try again in a few minutes, or open OpKey and type the code from your text message.",
            ]),
        ),
    };
    let mut response = (status, document(title, &body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (HeaderName::from_static("x-robots-tag"), "noindex"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn pending_body(invite: &PendingInvite) -> String {
    let organization = if invite.organization.trim().is_empty() {
        "Your fleet".to_owned()
    } else {
        escape(&invite.organization)
    };
    let greeting = match &invite.first_name {
        Some(name) => format!("Hi {}, {organization}", escape(name)),
        None => organization,
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"lead\">{greeting} has invited you to OpKey, the app for your machine keys.</p>\n\
         <ol>\n<li>Install OpKey from your app store (Google Play or the App Store).</li>\n\
         <li>Come back to this page and tap <strong>Open in OpKey</strong>.</li>\n</ol>\n\
         <p><a class=\"button\" href=\"{}\">Open in OpKey</a></p>\n",
        escape(&format!("{APP_INVITE_SCHEME_PREFIX}{}", invite.token.expose()))
    );
    match &invite.code {
        Some(code) => {
            let _ = write!(
                body,
                "<p>Or open OpKey and type this code:</p>\n<p class=\"code\">{}</p>\n",
                escape(&code.display())
            );
        }
        None => body.push_str("<p>Or open OpKey and type the code from your text message.</p>\n"),
    }
    let _ = writeln!(
        body,
        "<p class=\"note\">This invite expires {} and sets up one phone only.</p>",
        escape(&utc_minute(invite.expires_at))
    );
    body
}

fn paragraphs(texts: &[&str]) -> String {
    texts.iter().map(|t| format!("<p>{}</p>\n", escape(t))).collect()
}

const STYLE: &str = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
line-height:1.5;color:#1c1c1c;background:#f4f5f7}\
main{max-width:32rem;margin:0 auto;padding:1.5rem 1.25rem}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}\
.lead{font-size:1.1rem}ol{padding-left:1.25rem}\
.button{display:block;text-align:center;padding:0.9rem 1rem;border-radius:0.5rem;background:#0b57d0;\
color:#fff;font-weight:600;font-size:1.1rem;text-decoration:none}\
.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1.6rem;letter-spacing:0.08em;\
text-align:center;background:#fff;border:1px solid #d0d4da;border-radius:0.5rem;padding:0.75rem;\
user-select:all}\
.note{color:#555;font-size:0.95rem}\
@media (prefers-color-scheme:dark){body{color:#e8e8e8;background:#16181c}\
.code{background:#22252b;border-color:#3a3f47}.note{color:#aaa}}";

fn document(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title} · OpKey</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
}

/// Escapes text for HTML content and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use time::macros::datetime;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(escape(r#"<b>&"'x"#), "&lt;b&gt;&amp;&quot;&#39;x");
    }

    #[test]
    fn the_pending_page_escapes_names_and_debug_hides_the_secrets() {
        let rng = SystemRandom::new();
        let invite = PendingInvite {
            token: InviteToken::generate(&rng).unwrap(),
            organization: "<b>&\"".to_owned(),
            first_name: Some("<i>Ann".to_owned()),
            code: Some(ShortCode::generate(&rng).unwrap()),
            expires_at: datetime!(2026-01-12 09:00 UTC),
        };
        let body = pending_body(&invite);
        assert!(
            body.contains("Hi &lt;i&gt;Ann, &lt;b&gt;&amp;&quot; has invited you"),
            "{body}"
        );
        assert!(!body.contains("<b>") && !body.contains("<i>"), "{body}");
        assert!(body.contains("expires 2026-01-12 09:00 UTC"), "{body}");
        let debug = format!("{invite:?}");
        assert!(!debug.contains(invite.token.expose()), "{debug}");
        let code = invite.code.as_ref().unwrap();
        assert!(
            !debug.contains(code.expose()) && !debug.contains(&code.display()),
            "{debug}"
        );
    }
}
