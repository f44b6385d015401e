//! The CLI's installation folder (`--home`): the core's store, the file-backed secret
//! store, and `settings.json` (invite hosts to trust, the backend to use, the local
//! machines to reach). Settings hold no secrets.

use crate::error::CliError;
use opkey_core::{CoreConfig, FileSecretStore, OpKey};
use opkey_protocol::SystemClock;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

const SETTINGS_FILE: &str = "settings.json";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Hosts (besides loopback) whose https invite links this installation accepts.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// The backend, when it is not the origin of the invite link.
    #[serde(default)]
    pub server: Option<Url>,
    /// Local sockets of `opkey-machine run` processes that unlock and lock try (`--via`).
    #[serde(default)]
    pub machine_addresses: Vec<String>,
}

#[derive(Debug)]
pub struct Home {
    pub dir: PathBuf,
    pub settings: Settings,
}

impl Home {
    /// `--home`, else `$OPKEY_HOME` (through clap), else `~/.opkey`.
    pub fn resolve(dir: Option<PathBuf>) -> Result<Self, CliError> {
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".opkey"))
                .ok_or_else(|| {
                    CliError::usage(
                        "no home folder: $HOME is not set",
                        Some("pass --home DIR".to_owned()),
                    )
                })?,
        };
        Self::open(&dir)
    }

    pub fn open(dir: &Path) -> Result<Self, CliError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Io(format!("cannot create the home folder {}: {e}", dir.display())))?;
        let path = dir.join(SETTINGS_FILE);
        let settings = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::usage(
                    format!("{} is not valid settings JSON: {e}", path.display()),
                    Some(
                        "fix or delete the file; it only holds allow_hosts, server and machine_addresses"
                            .to_owned(),
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(e) => return Err(CliError::Io(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(Self {
            dir: dir.to_owned(),
            settings,
        })
    }

    pub fn save_settings(&self) -> Result<(), CliError> {
        let path = self.dir.join(SETTINGS_FILE);
        let tmp = self.dir.join(format!("{SETTINGS_FILE}.tmp"));
        let body = serde_json::to_vec_pretty(&self.settings).expect("settings always serialise");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
    }

    /// Opens the phone core on this folder: loopback invite links are always accepted
    /// (local servers), other hosts only from the settings.
    pub fn open_core(&self) -> Result<OpKey, CliError> {
        let mut config = CoreConfig::new(&self.dir);
        config.server_url = self.settings.server.clone();
        config.invite_hosts = self.settings.allow_hosts.clone();
        config.allow_loopback_invites = true;
        config.device_name = device_name();
        let secrets = Arc::new(FileSecretStore::new(self.dir.join("secrets")));
        Ok(OpKey::open(config, secrets, None, Arc::new(SystemClock))?)
    }
}

fn device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() {
        "opkey desktop".to_owned()
    } else {
        format!("opkey desktop ({host})")
    }
}
