//! App links: which phone apps may open this server's invite links (`…/i/{token}`)
//! directly instead of the browser. Owns the configuration ([`AppLinks`]), its validation
//! and parsing from the `serve` flags, and the two files the phone platforms fetch to
//! verify the association: `GET /.well-known/assetlinks.json` (Android Digital Asset
//! Links) and `GET /.well-known/apple-app-site-association` (iOS universal links).
//!
//! Neither file holds a secret: package names, bundle ids and signing-certificate
//! fingerprints are public. Both are served from the configuration, without auth, as
//! `application/json` with `Cache-Control: public, max-age=3600`; a platform with no app
//! configured answers 404 with the API's JSON error.
//!
//! The Apple file uses only the `appIDs` + `components` form (iOS 13 and later). The
//! legacy `appID` + `paths` form of iOS 12 is left out on purpose: the OpKey app needs
//! Swift concurrency (iOS 13+), so no phone that reads only the legacy form can run it.

use crate::app::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use opkey_protocol::api::ErrorBody;
use serde::Serialize;
use std::collections::HashSet;
use std::str::FromStr;
use url::Url;
use utoipa::ToSchema;

/// Bytes in a SHA-256 certificate fingerprint.
const FINGERPRINT_BYTES: usize = 32;
/// Characters in an Apple Team ID.
const TEAM_ID_LEN: usize = 10;
/// Longest accepted Android package name or Apple app id.
const MAX_NAME_LEN: usize = 255;
/// What the well-known files answer in `Cache-Control`.
pub const WELL_KNOWN_CACHE_CONTROL: &str = "public, max-age=3600";
/// The Digital Asset Links relation that lets an app open a site's links.
pub const HANDLE_ALL_URLS: &str = "delegate_permission/common.handle_all_urls";
/// The comment on the Apple file's one component.
pub const APPLE_COMPONENT_COMMENT: &str = "OpKey invite links";

/// The apps allowed to open invite links. Empty by default: no well-known file is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppLinks {
    /// Android apps, each with the SHA-256 fingerprints of the certificates that sign it.
    pub android: Vec<AndroidApp>,
    /// Apple app ids, `TEAMID.bundle.id`.
    pub apple_app_ids: Vec<String>,
}

/// One Android app: its package name and signing-certificate fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndroidApp {
    /// E.g. `com.example.opkey`.
    pub package_name: String,
    /// Upper-case hex bytes separated by colons, as `keytool -list -v` prints them.
    pub sha256_cert_fingerprints: Vec<String>,
}

/// Why an app-links setting was refused. Nothing here is secret, so the value is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppLinksError {
    #[error(
        "'{0}' should look like PACKAGE=FINGERPRINT[,FINGERPRINT...], e.g. \
         com.example.opkey=14:6D:E9:…:B5 (32 bytes)"
    )]
    AndroidFlagShape(String),
    #[error(
        "'{0}' is not an Android package name: two or more parts separated by dots, each starting \
         with a letter and made of letters, digits and underscores (e.g. com.example.opkey)"
    )]
    PackageName(String),
    #[error("the Android app {0} needs at least one SHA-256 signing-certificate fingerprint")]
    NoFingerprint(String),
    #[error(
        "'{fingerprint}' (for {package}) is not a SHA-256 certificate fingerprint: 32 bytes written \
         as two hex digits each, separated by colons, as `keytool -list -v` or the Play Console's \
         app signing page shows it"
    )]
    Fingerprint { package: String, fingerprint: String },
    #[error("the fingerprint {fingerprint} is given twice for {package}")]
    DuplicateFingerprint { package: String, fingerprint: String },
    #[error(
        "the Android app {0} is given twice: list all of its fingerprints in one setting, separated by commas"
    )]
    DuplicatePackage(String),
    #[error(
        "'{0}' is not an Apple app ID: the 10-character Team ID (upper-case letters and digits), a \
         dot, and the bundle ID (letters, digits, hyphens and dots), e.g. ABCDE12345.com.example.opkey"
    )]
    AppleAppId(String),
    #[error("the Apple app ID {0} is given twice")]
    DuplicateAppleAppId(String),
}

impl AppLinks {
    /// True when no app of either platform is configured.
    pub fn is_empty(&self) -> bool {
        self.android.is_empty() && self.apple_app_ids.is_empty()
    }

    /// Checks every entry and returns the normalised settings (fingerprints upper-case).
    pub fn validated(&self) -> Result<AppLinks, AppLinksError> {
        let mut packages = HashSet::new();
        let mut android = Vec::with_capacity(self.android.len());
        for app in &self.android {
            let app = AndroidApp::new(&app.package_name, &app.sha256_cert_fingerprints)?;
            if !packages.insert(app.package_name.clone()) {
                return Err(AppLinksError::DuplicatePackage(app.package_name));
            }
            android.push(app);
        }
        let mut ids = HashSet::new();
        let mut apple_app_ids = Vec::with_capacity(self.apple_app_ids.len());
        for id in &self.apple_app_ids {
            let id = parse_apple_app_id(id)?;
            if !ids.insert(id.clone()) {
                return Err(AppLinksError::DuplicateAppleAppId(id));
            }
            apple_app_ids.push(id);
        }
        Ok(AppLinks {
            android,
            apple_app_ids,
        })
    }
}

impl AndroidApp {
    /// An app with a checked package name and checked, upper-cased fingerprints.
    pub fn new(package_name: &str, fingerprints: &[String]) -> Result<Self, AppLinksError> {
        let package_name = package_name.trim();
        check_package_name(package_name)?;
        if fingerprints.is_empty() {
            return Err(AppLinksError::NoFingerprint(package_name.to_owned()));
        }
        let mut normalised: Vec<String> = Vec::with_capacity(fingerprints.len());
        for fingerprint in fingerprints {
            let fingerprint =
                normalise_fingerprint(fingerprint).ok_or_else(|| AppLinksError::Fingerprint {
                    package: package_name.to_owned(),
                    fingerprint: fingerprint.trim().to_owned(),
                })?;
            if normalised.contains(&fingerprint) {
                return Err(AppLinksError::DuplicateFingerprint {
                    package: package_name.to_owned(),
                    fingerprint,
                });
            }
            normalised.push(fingerprint);
        }
        Ok(Self {
            package_name: package_name.to_owned(),
            sha256_cert_fingerprints: normalised,
        })
    }
}

/// Parses the `--android-app` value `PACKAGE=FINGERPRINT[,FINGERPRINT...]`.
impl FromStr for AndroidApp {
    type Err = AppLinksError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (package, fingerprints) = text
            .split_once('=')
            .ok_or_else(|| AppLinksError::AndroidFlagShape(text.to_owned()))?;
        let fingerprints: Vec<String> = fingerprints
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        AndroidApp::new(package, &fingerprints)
    }
}

/// Java package rules as Android applies them to application ids.
fn check_package_name(name: &str) -> Result<(), AppLinksError> {
    let refused = || AppLinksError::PackageName(name.to_owned());
    if name.len() > MAX_NAME_LEN {
        return Err(refused());
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 {
        return Err(refused());
    }
    for part in parts {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return Err(refused()),
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(refused());
        }
    }
    Ok(())
}

/// `ab:CD:…` (32 bytes) → `AB:CD:…`; `None` for anything else.
fn normalise_fingerprint(text: &str) -> Option<String> {
    let text = text.trim();
    let bytes: Vec<&str> = text.split(':').collect();
    let well_formed = bytes.len() == FINGERPRINT_BYTES
        && bytes
            .iter()
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    well_formed.then(|| text.to_ascii_uppercase())
}

/// Checks `TEAMID.bundle.id` and returns it trimmed.
pub fn parse_apple_app_id(text: &str) -> Result<String, AppLinksError> {
    let id = text.trim();
    let refused = || AppLinksError::AppleAppId(id.to_owned());
    if id.len() > MAX_NAME_LEN {
        return Err(refused());
    }
    let (team, bundle) = id.split_once('.').ok_or_else(refused)?;
    let team_ok =
        team.len() == TEAM_ID_LEN && team.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let bundle_ok = !bundle.is_empty()
        && bundle
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if team_ok && bundle_ok {
        Ok(id.to_owned())
    } else {
        Err(refused())
    }
}

/// One Digital Asset Links statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AssetLinkStatement {
    /// Always `["delegate_permission/common.handle_all_urls"]`.
    pub relation: Vec<String>,
    pub target: AssetLinkTarget,
}

/// The app a statement names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AssetLinkTarget {
    /// Always `android_app`.
    pub namespace: String,
    pub package_name: String,
    pub sha256_cert_fingerprints: Vec<String>,
}

/// The Apple app site association file (only its `applinks` part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppleAppSiteAssociation {
    pub applinks: AppleAppLinks,
}

/// Which apps open which paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppleAppLinks {
    pub details: Vec<AppleAppLinkDetail>,
}

/// The configured apps and the invite-link paths they open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppleAppLinkDetail {
    #[serde(rename = "appIDs")]
    pub app_ids: Vec<String>,
    pub components: Vec<AppleComponent>,
}

/// A path pattern: `{"/": "/i/*", "comment": "OpKey invite links"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppleComponent {
    #[serde(rename = "/")]
    pub path: String,
    pub comment: String,
}

/// The Digital Asset Links statements for `links`; `None` when no Android app is set.
pub fn asset_links(links: &AppLinks) -> Option<Vec<AssetLinkStatement>> {
    (!links.android.is_empty()).then(|| {
        links
            .android
            .iter()
            .map(|app| AssetLinkStatement {
                relation: vec![HANDLE_ALL_URLS.to_owned()],
                target: AssetLinkTarget {
                    namespace: "android_app".to_owned(),
                    package_name: app.package_name.clone(),
                    sha256_cert_fingerprints: app.sha256_cert_fingerprints.clone(),
                },
            })
            .collect()
    })
}

/// The Apple file for `links`, matching invite links under `invite_base_url`;
/// `None` when no Apple app is set.
pub fn apple_app_site_association(
    links: &AppLinks,
    invite_base_url: &Url,
) -> Option<AppleAppSiteAssociation> {
    (!links.apple_app_ids.is_empty()).then(|| AppleAppSiteAssociation {
        applinks: AppleAppLinks {
            details: vec![AppleAppLinkDetail {
                app_ids: links.apple_app_ids.clone(),
                components: vec![AppleComponent {
                    path: invite_path_pattern(invite_base_url),
                    comment: APPLE_COMPONENT_COMMENT.to_owned(),
                }],
            }],
        },
    })
}

/// `/i/*`, below the invite base URL's own path when it has one (`/opkey/i/*`).
pub fn invite_path_pattern(invite_base_url: &Url) -> String {
    format!("{}/i/*", invite_base_url.path().trim_end_matches('/'))
}

fn well_known<T: Serialize>(document: T) -> Response {
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(WELL_KNOWN_CACHE_CONTROL),
    );
    response
}

/// Android's Digital Asset Links file: the apps that may open this site's links.
#[utoipa::path(
    get, path = "/.well-known/assetlinks.json", tag = "app links", operation_id = "well_known_assetlinks",
    responses(
        (status = 200, body = Vec<AssetLinkStatement>, content_type = "application/json",
         description = "one handle_all_urls statement per configured Android app (--android-app)"),
        (status = 404, body = ErrorBody, description = "no Android app is configured")
    )
)]
pub(crate) async fn assetlinks(State(state): State<AppState>) -> Result<Response, ApiError> {
    asset_links(&state.app_links).map(well_known).ok_or_else(|| {
        ApiError::NotFound(
            "no Android app is configured for invite links: start the server with \
             --android-app PACKAGE=FINGERPRINT"
                .to_owned(),
        )
    })
}

/// iOS's apple-app-site-association file: the apps that open invite links (`/i/*`).
#[utoipa::path(
    get, path = "/.well-known/apple-app-site-association", tag = "app links",
    operation_id = "well_known_apple_app_site_association",
    responses(
        (status = 200, body = AppleAppSiteAssociation, content_type = "application/json",
         description = "the configured Apple app ids (--apple-app-id) open the invite links"),
        (status = 404, body = ErrorBody, description = "no Apple app is configured")
    )
)]
pub(crate) async fn apple(State(state): State<AppState>) -> Result<Response, ApiError> {
    apple_app_site_association(&state.app_links, &state.invite_base_url)
        .map(well_known)
        .ok_or_else(|| {
            ApiError::NotFound(
                "no Apple app is configured for invite links: start the server with \
                 --apple-app-id TEAMID.BUNDLEID"
                    .to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str =
        "14:6d:e9:83:c5:73:06:50:d8:ee:b9:95:2f:34:fc:64:16:a0:83:42:e6:1d:be:a8:8a:04:96:b2:3f:cf:44:e5";

    #[test]
    fn an_android_flag_is_parsed_and_its_fingerprints_upper_cased() {
        let app: AndroidApp = format!("com.example.opkey={FP}, {}", FP.replace("14", "15"))
            .parse()
            .unwrap();
        assert_eq!(app.package_name, "com.example.opkey");
        assert_eq!(app.sha256_cert_fingerprints.len(), 2);
        assert_eq!(app.sha256_cert_fingerprints[0], FP.to_ascii_uppercase());
        assert!(app.sha256_cert_fingerprints[1].starts_with("15:6D"));
    }

    #[test]
    fn malformed_android_flags_are_refused_with_what_is_wrong() {
        let parse = |s: &str| s.parse::<AndroidApp>().unwrap_err();
        assert_eq!(
            parse("com.example.opkey"),
            AppLinksError::AndroidFlagShape("com.example.opkey".into())
        );
        assert_eq!(
            parse(&format!("opkey={FP}")),
            AppLinksError::PackageName("opkey".into())
        );
        assert_eq!(
            parse(&format!("com.1example={FP}")),
            AppLinksError::PackageName("com.1example".into())
        );
        assert_eq!(
            parse(&format!("com..opkey={FP}")),
            AppLinksError::PackageName("com..opkey".into())
        );
        assert_eq!(
            parse(&format!("com.ex-ample={FP}")),
            AppLinksError::PackageName("com.ex-ample".into())
        );
        assert_eq!(
            parse("com.example.opkey="),
            AppLinksError::NoFingerprint("com.example.opkey".into())
        );
        let short = &FP[..FP.len() - 3];
        assert!(matches!(
            parse(&format!("com.example.opkey={short}")),
            AppLinksError::Fingerprint { fingerprint, .. } if fingerprint == short
        ));
        let no_colons = FP.replace(':', "");
        assert!(matches!(
            parse(&format!("com.example.opkey={no_colons}")),
            AppLinksError::Fingerprint { .. }
        ));
        let not_hex = FP.replacen("14", "1G", 1);
        assert!(matches!(
            parse(&format!("com.example.opkey={not_hex}")),
            AppLinksError::Fingerprint { .. }
        ));
        assert!(matches!(
            parse(&format!("com.example.opkey={FP},{}", FP.to_ascii_uppercase())),
            AppLinksError::DuplicateFingerprint { .. }
        ));
        let message = parse(&format!("com.example.opkey={short}")).to_string();
        assert!(message.contains("32 bytes"), "{message}");
    }

    #[test]
    fn apple_app_ids_need_a_ten_character_team_id_and_a_bundle_id() {
        assert_eq!(
            parse_apple_app_id(" ABCDE12345.com.example.opkey ").unwrap(),
            "ABCDE12345.com.example.opkey"
        );
        for bad in [
            "com.example.opkey",
            "ABCDE1234.com.example.opkey",
            "abcde12345.com.example.opkey",
            "ABCDE12345.",
            "ABCDE12345.com..opkey",
            "ABCDE12345.com.example_opkey",
            "ABCDE12345",
        ] {
            assert_eq!(
                parse_apple_app_id(bad),
                Err(AppLinksError::AppleAppId(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_normalises_and_refuses_duplicates() {
        let links = AppLinks {
            android: vec![AndroidApp {
                package_name: "com.example.opkey".into(),
                sha256_cert_fingerprints: vec![FP.into()],
            }],
            apple_app_ids: vec!["ABCDE12345.com.example.opkey".into()],
        };
        let valid = links.validated().unwrap();
        assert_eq!(
            valid.android[0].sha256_cert_fingerprints[0],
            FP.to_ascii_uppercase()
        );
        let mut twice = links.clone();
        twice.android.push(twice.android[0].clone());
        assert_eq!(
            twice.validated(),
            Err(AppLinksError::DuplicatePackage("com.example.opkey".into()))
        );
        let mut twice = links;
        twice.apple_app_ids.push("ABCDE12345.com.example.opkey".into());
        assert!(matches!(
            twice.validated(),
            Err(AppLinksError::DuplicateAppleAppId(_))
        ));
        assert!(AppLinks::default().validated().unwrap().is_empty());
    }

    #[test]
    fn the_apple_pattern_follows_the_invite_base_path() {
        let root = Url::parse("https://keys.example/").unwrap();
        let nested = Url::parse("https://example.com/opkey/").unwrap();
        assert_eq!(invite_path_pattern(&root), "/i/*");
        assert_eq!(invite_path_pattern(&nested), "/opkey/i/*");
    }
}
