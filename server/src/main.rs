//! `opkey-server`: runs the reference backend, or prints its OpenAPI document.
//!
//! `serve` prints exactly `listening on http://HOST:PORT` as its first stdout line (scripts
//! wait for it); logs go to stderr. Ctrl-C or SIGTERM stop it gracefully.

use clap::{Parser, Subcommand, ValueEnum};
use opkey_server::{HttpSmsConfig, ServerConfig, SmsConfig};
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

impl ServeArgs {
    fn into_config(self) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::new(self.db, self.admin_token);
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
