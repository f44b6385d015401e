//! Key files beside the database (the issuer key, the secrets key): created once, whole or
//! not at all, readable by the owner only, and from then on only read. Never logs their
//! contents.

use opkey_protocol::encoding::hex;
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to a new file at `path`, readable by the owner only. Returns false
/// (and leaves the existing file alone) when `path` already exists.
pub fn create_private_file(path: &Path, bytes: &[u8], rng: &SystemRandom) -> io::Result<bool> {
    let mut nonce = [0u8; 8];
    rng.fill(&mut nonce)
        .map_err(|_| io::Error::other("the system random number generator failed"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", hex(&nonce)));
    let result = write_then_link(&temp, path, bytes);
    let _ = fs::remove_file(&temp);
    match result {
        Ok(()) => {
            sync_folder(path);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key appears at `path` complete or not at all: a hard link never replaces an
/// existing file, unlike a rename.
fn write_then_link(temp: &PathBuf, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::hard_link(temp, path)
}

fn sync_folder(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Logs a warning when others may read the file; `what` names it, e.g. "the issuer key file".
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "{what} is readable by others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}
