//! Where the machine keeps what must survive a restart: the verifier's [`MachineState`]
//! (counters, clock floor, revocation list, grant cache) and the usage log. The file store
//! writes atomically (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves the old state or the new one, never half of either. The keypad part holds the
//! keypad table (**secret**: Rolling PIN seeds and Static PINs), so the file is written
//! mode 0600 like the machine key, and its bytes are zeroed after use.

use crate::MachineError;
use crate::keypad::KeypadState;
use crate::usage::UsageSession;
use opkey_protocol::ble::MachineState;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

pub const STATE_FORMAT: u32 = 1;

/// The persisted form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    pub format: u32,
    pub machine_id: String,
    pub verifier: MachineState,
    #[serde(default)]
    pub usage: Vec<UsageSession>,
    /// Every usage session up to this number reached the backend (0 for none).
    #[serde(default)]
    pub usage_uploaded_through: u32,
    /// The keypad table, throttle and last accepted Rolling PIN steps.
    #[serde(default)]
    pub keypad: KeypadState,
}

/// A place to keep [`StoredState`]. `save` returns only once the state is durable.
pub trait StateStore: fmt::Debug + Send {
    /// The last saved state; `None` for a machine that never saved one.
    fn load(&mut self) -> Result<Option<StoredState>, MachineError>;
    fn save(&mut self, state: &StoredState) -> Result<(), MachineError>;
}

/// A JSON file, replaced atomically on every save.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }
}

impl StateStore for FileStore {
    fn load(&mut self) -> Result<Option<StoredState>, MachineError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MachineError::io(&self.path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| MachineError::CorruptState {
                path: self.path.clone(),
                source,
            })
    }

    fn save(&mut self, state: &StoredState) -> Result<(), MachineError> {
        let json =
            Zeroizing::new(serde_json::to_vec_pretty(state).expect("the machine state always serializes"));
        let temp = self.temp_path();
        let write = || -> io::Result<()> {
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            // A temporary file left by an older version may have wider permissions.
            #[cfg(unix)]
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)?;
            sync_parent_dir(&self.path)
        };
        write().map_err(MachineError::io(&self.path))
    }
}

/// The rename itself is durable only once the directory is synced.
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A store in memory for tests. Clones share the same slot, so a test can "restart" a
/// machine on the state the previous one saved.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    slot: Arc<Mutex<Option<StoredState>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// What was last saved.
    pub fn saved(&self) -> Option<StoredState> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl StateStore for MemoryStore {
    fn load(&mut self) -> Result<Option<StoredState>, MachineError> {
        Ok(self.saved())
    }

    fn save(&mut self, state: &StoredState) -> Result<(), MachineError> {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(state.clone());
        Ok(())
    }
}
