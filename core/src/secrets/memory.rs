//! A [`SecretStore`] in memory, for tests and throwaway sessions. Values are zeroized
//! when replaced, deleted or dropped.

use super::{SecretStore, SecretStoreError, check_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use zeroize::Zeroizing;

#[derive(Default)]
pub struct MemorySecretStore {
    values: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl MemorySecretStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, Zeroizing<Vec<u8>>>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = self.values().keys().cloned().collect();
        names.sort();
        f.debug_struct("MemorySecretStore")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl SecretStore for MemorySecretStore {
    fn load(&self, name: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        check_name(name)?;
        Ok(self.values().get(name).map(|v| v.to_vec()))
    }

    fn save(&self, name: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        check_name(name)?;
        self.values()
            .insert(name.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        check_name(name)?;
        self.values().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_debug_shows_names_only() {
        let s = MemorySecretStore::new();
        s.save("a", b"super-secret").unwrap();
        assert_eq!(s.load("a").unwrap().unwrap(), b"super-secret");
        assert!(!format!("{s:?}").contains("super-secret"));
        s.delete("a").unwrap();
        s.delete("a").unwrap();
        assert_eq!(s.load("a").unwrap(), None);
        assert!(matches!(
            s.save("../x", b""),
            Err(SecretStoreError::InvalidName { .. })
        ));
    }
}
