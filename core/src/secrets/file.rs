//! A [`SecretStore`] that keeps one file per name in a directory: the CLI's stand-in
//! for a platform keystore. The directory is created with mode 0700 and every file with
//! mode 0600; a value is written to a temporary file, synced, then renamed over the old
//! one, so a crash leaves either the old or the new value, never half of one.

use super::{SecretStore, SecretStoreError, check_name};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct FileSecretStore {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FileSecretStore {
    /// Uses `dir`; it is created (mode 0700) when the first secret is saved.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretStoreError> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

impl SecretStore for FileSecretStore {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let path = self.path(name)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(&path, e)),
        }
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        let path = self.path(name)?;
        create_private_dir(&self.dir).map_err(|e| unavailable(&self.dir, e))?;
        let temp = self.dir.join(format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_private(&temp, value).and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(unavailable(&path, e));
        }
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(&path, e)),
        }
    }
}

fn unavailable(path: &Path, e: std::io::Error) -> SecretStoreError {
    SecretStoreError::Unavailable {
        reason: format!("{}: {e}", path.display()),
    }
}

fn write_private(path: &Path, value: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value)?;
    file.sync_all()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_secret_survives_a_new_store_and_is_private_to_the_user() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        let store = FileSecretStore::new(&dir);
        store.save("opkey.data-key", &[7u8; 32]).unwrap();
        store.save("opkey.data-key", &[9u8; 32]).unwrap();

        let again = FileSecretStore::new(&dir);
        assert_eq!(again.load("opkey.data-key").unwrap().unwrap(), vec![9u8; 32]);
        assert_eq!(again.load("missing").unwrap(), None);
        // Only the value file: no temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("opkey.data-key")), 0o600);
        }

        again.delete("opkey.data-key").unwrap();
        again.delete("opkey.data-key").unwrap();
        assert_eq!(again.load("opkey.data-key").unwrap(), None);
    }

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(tmp.path());
        for bad in ["", "../key", "a/b", ".hidden", "key\0"] {
            assert!(
                matches!(store.save(bad, b"x"), Err(SecretStoreError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}
