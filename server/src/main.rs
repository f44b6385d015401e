//! `opkey-server`: runs the reference backend, or prints its OpenAPI document.
//!
//! `serve` prints exactly `listening on http://HOST:PORT` as its first stdout line (scripts
//! wait for it); logs go to stderr. Ctrl-C or SIGTERM stop it gracefully.

use clap::{Parser, Subcommand, ValueEnum};
use opkey_server::app_links::parse_apple_app_id;
use opkey_server::{AndroidApp, AppLinks, HttpSmsConfig, ServerConfig, SmsConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "opkey-server",
    version,
    about = "OpKey's reference Access Management backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the admin and operator APIs.
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Gateway {
    /// Keep messages in the database outbox (GET /admin/v1/sms).
    Dev,
    /// POST messages to an SMS provider (--sms-url).
    Http,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// SQLite database file (created if absent). Beside it, `<db file name>.secrets-key`
    /// (32 bytes, mode 0600, created if absent) seals PIN seeds and Static PINs: back it up
    /// with the database.
    #[arg(long, value_name = "FILE", default_value = "opkey.db")]
    db: PathBuf,
    /// The grant-signing key (PKCS#8; created with mode 0600 if absent). Default: beside
    /// the database, `<db file name>.issuer-key`. Back it up: machines trust its public key.
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bootstrap admin token (role admin).
    #[arg(long, env = "OPKEY_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    admin_token: String,
    /// Base URL of invite links (`{URL}/i/{token}`); defaults to this server's URL.
    #[arg(long, value_name = "URL")]
    invite_url: Option<Url>,
    /// Where telematics units reach this server (the `server_url` of provisioning bundles);
    /// defaults to --invite-url, then this server's URL.
    #[arg(long, value_name = "URL")]
    public_url: Option<Url>,
    /// An Android app that opens invite links (served in /.well-known/assetlinks.json): its
    /// package name and the SHA-256 fingerprints of its signing certificates, 32 hex bytes
    /// separated by colons. Repeat for more apps.
    #[arg(
        long = "android-app",
        value_name = "PACKAGE=FINGERPRINT[,FINGERPRINT...]",
        value_parser = parse_android_app
    )]
    android_apps: Vec<AndroidApp>,
    /// An iOS app that opens invite links (served in
    /// /.well-known/apple-app-site-association): Team ID, a dot, bundle ID. Repeat for more.
    #[arg(long = "apple-app-id", value_name = "TEAMID.BUNDLEID", value_parser = parse_apple_id)]
    apple_app_ids: Vec<String>,
    /// How many days an invite stays redeemable.
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=365))]
    invite_ttl_days: u32,
    /// Name of the organization created on first start.
    #[arg(long, value_name = "NAME", default_value = opkey_server::config::DEFAULT_ORGANIZATION_NAME)]
    default_organization: String,
    /// Which SMS gateway sends invitations.
    #[arg(long, value_enum, default_value = "dev")]
    sms_gateway: Gateway,
    /// The SMS provider's endpoint (with --sms-gateway http).
    #[arg(long, value_name = "URL")]
    sms_url: Option<Url>,
    /// A header with the provider's credentials, e.g. 'Authorization: Bearer …'.
    #[arg(
        long,
        env = "OPKEY_SMS_AUTH_HEADER",
        hide_env_values = true,
        value_name = "NAME: VALUE"
    )]
    sms_auth_header: Option<String>,
    /// Request body with {to} and {body} placeholders.
    #[arg(long, value_name = "TEMPLATE")]
    sms_body_template: Option<String>,
    /// Content type of the request body (application/json or application/x-www-form-urlencoded).
    #[arg(long, value_name = "TYPE")]
    sms_content_type: Option<String>,
}

fn parse_android_app(text: &str) -> Result<AndroidApp, String> {
    text.parse()
        .map_err(|e: opkey_server::config::AppLinksError| e.to_string())
}

fn parse_apple_id(text: &str) -> Result<String, String> {
    parse_apple_app_id(text).map_err(|e| e.to_string())
}

impl ServeArgs {
    fn into_config(self) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::new(self.db, self.admin_token);
        config.app_links = AppLinks {
            android: self.android_apps,
            apple_app_ids: self.apple_app_ids,
        }
        .validated()
        .map_err(|e| format!("app links: {e}"))?;
        config.issuer_key_path = self.issuer_key;
        config.invite_base_url = self.invite_url;
        config.public_url = self.public_url;
        config.invite_ttl = time::Duration::days(i64::from(self.invite_ttl_days));
        config.default_organization_name = self.default_organization;
        config.sms = match self.sms_gateway {
            Gateway::Dev => SmsConfig::Dev,
            Gateway::Http => {
                let url = self
                    .sms_url
                    .ok_or("--sms-gateway http needs --sms-url with the provider's endpoint")?;
                let mut http = HttpSmsConfig::new(url);
                if let Some(header) = self.sms_auth_header {
                    let (name, value) = header
                        .split_once(':')
                        .ok_or("--sms-auth-header must look like 'Name: value'")?;
                    http.auth_header = Some((name.trim().to_owned(), value.trim().to_owned()));
                }
                if let Some(template) = self.sms_body_template {
                    http.body_template = template;
                }
                if let Some(content_type) = self.sms_content_type {
                    http.content_type = content_type;
                }
                SmsConfig::Http(http)
            }
        };
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            println!("{}", opkey_server::openapi_json());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(*args).await,
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let listen = args.listen;
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("opkey-server: {message}");
            return ExitCode::from(2);
        }
    };
    let server = match opkey_server::start(config, listen).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("opkey-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let printed = writeln!(
        stdout,
        "listening on {}",
        server.url().as_str().trim_end_matches('/')
    )
    .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        eprintln!("opkey-server: cannot write to stdout: {e}");
    }
    wait_for_stop_signal().await;
    tracing::info!("stopping");
    server.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str =
        "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";

    fn serve(extra: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut args = vec!["opkey-server", "serve", "--admin-token", "t"];
        args.extend_from_slice(extra);
        match Cli::try_parse_from(args)?.command {
            Command::Serve(args) => Ok(*args),
            Command::Openapi => unreachable!("the serve subcommand was given"),
        }
    }

    #[test]
    fn app_link_flags_repeat_and_fill_the_configuration() {
        let lower = FP.to_ascii_lowercase();
        let config = serve(&[
            "--android-app",
            &format!("com.example.opkey={lower}"),
            "--android-app",
            &format!("com.example.opkey.beta={FP},{}", FP.replacen("14", "15", 1)),
            "--apple-app-id",
            "ABCDE12345.com.example.opkey",
            "--apple-app-id",
            "ABCDE12345.com.example.opkey.beta",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        let links = &config.app_links;
        assert_eq!(links.android.len(), 2);
        assert_eq!(links.android[0].package_name, "com.example.opkey");
        assert_eq!(links.android[0].sha256_cert_fingerprints, vec![FP.to_owned()]);
        assert_eq!(links.android[1].sha256_cert_fingerprints.len(), 2);
        assert_eq!(
            links.apple_app_ids,
            vec![
                "ABCDE12345.com.example.opkey",
                "ABCDE12345.com.example.opkey.beta"
            ]
        );
        assert!(serve(&[]).unwrap().into_config().unwrap().app_links.is_empty());
    }

    #[test]
    fn bad_app_link_flags_are_refused_with_what_is_wrong() {
        let refused = |extra: &[&str]| serve(extra).err().map(|e| e.to_string()).unwrap_or_default();
        let message = refused(&["--android-app", "com.example.opkey"]);
        assert!(message.contains("PACKAGE=FINGERPRINT"), "{message}");
        let message = refused(&["--android-app", &format!("opkey={FP}")]);
        assert!(message.contains("not an Android package name"), "{message}");
        let message = refused(&["--android-app", "com.example.opkey=AB:CD"]);
        assert!(
            message.contains("not a SHA-256 certificate fingerprint"),
            "{message}"
        );
        let message = refused(&["--apple-app-id", "com.example.opkey"]);
        assert!(message.contains("not an Apple app ID"), "{message}");
        let message = refused(&["--apple-app-id", "ABCDE12345"]);
        assert!(message.contains("10-character Team ID"), "{message}");
        let twice = serve(&[
            "--android-app",
            &format!("com.example.opkey={FP}"),
            "--android-app",
            &format!("com.example.opkey={}", FP.replacen("14", "15", 1)),
        ])
        .unwrap()
        .into_config()
        .unwrap_err();
        assert!(twice.contains("given twice"), "{twice}");
    }
}
