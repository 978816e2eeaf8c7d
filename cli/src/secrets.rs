//! Where the secrets of the cache are kept (the session, the requester role's credentials and the
//! issued credentials): private files (the default, see [`crate::files`]), or the OS keychain
//! (`keychain = true` in the configuration) through the `keyring` crate: the kernel's keyutils on
//! Linux, the Keychain on macOS, the Credential Manager on Windows.
//!
//! Either way the cache directory keeps its layout, because locks and `logout` work on paths: with
//! the keychain, each secret is an entry named by its path (service [`SERVICE`]), and the file at
//! that path holds only [`PLACEHOLDER`], never a token or a key. A cache written by one store reads
//! as empty through the other (logging in again fills it).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::files;

/// The keychain service every entry is filed under.
pub const SERVICE: &str = "portcullis";

/// What the file at a secret's path holds when the secret is in the keychain.
pub const PLACEHOLDER: &str = "{\"stored_in\": \"os-keychain\"}\n";

/// Where secrets go.
#[derive(Debug, Clone)]
pub enum SecretStore {
    /// Private files (0600, atomic writes).
    Files,
    /// The OS keychain.
    Keychain(Keychain),
}

/// Entries of the OS keychain (or of the store a test gives), one per secret path.
#[derive(Clone)]
pub struct Keychain {
    builder: Option<Arc<keyring::CredentialBuilder>>,
    entries: Arc<Mutex<HashMap<String, Arc<keyring::Entry>>>>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain").field("default_store", &self.builder.is_none()).finish_non_exhaustive()
    }
}

impl Keychain {
    /// The platform's keychain (keyutils on Linux).
    pub fn os() -> Self {
        Keychain { builder: None, entries: Arc::default() }
    }

    /// Entries made by `builder` instead (tests: `keyring::mock::default_credential_builder()`).
    pub fn with_builder(builder: Box<keyring::CredentialBuilder>) -> Self {
        Keychain { builder: Some(Arc::from(builder)), entries: Arc::default() }
    }

    /// The entry for `path`, made once per store (an entry of keyring's mock store only remembers
    /// what was set through that same entry).
    fn entry(&self, path: &Path) -> io::Result<Arc<keyring::Entry>> {
        let user = path.display().to_string();
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(e) = entries.get(&user) {
            return Ok(e.clone());
        }
        let entry = match &self.builder {
            None => keyring::Entry::new(SERVICE, &user).map_err(keychain_error)?,
            Some(b) => keyring::Entry::new_with_credential(b.build(None, SERVICE, &user).map_err(keychain_error)?),
        };
        let entry = Arc::new(entry);
        entries.insert(user, entry.clone());
        Ok(entry)
    }

    fn read(&self, path: &Path) -> io::Result<Option<String>> {
        match self.entry(path)?.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(e)),
        }
    }

    fn write(&self, path: &Path, text: &str) -> io::Result<()> {
        self.entry(path)?.set_password(text).map_err(keychain_error)
    }

    fn delete(&self, path: &Path) -> io::Result<()> {
        match self.entry(path)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_error(e)),
        }
    }
}

fn keychain_error(e: keyring::Error) -> io::Error {
    io::Error::other(format!("the OS keychain: {e} (set `keychain = false` in the configuration to use files)"))
}

impl SecretStore {
    /// The store the configuration asks for (`keychain`, default false).
    pub fn for_config(keychain: Option<bool>) -> Self {
        match keychain {
            Some(true) => SecretStore::Keychain(Keychain::os()),
            _ => SecretStore::Files,
        }
    }

    /// The value kept for `path`; `None` when there is none or it no longer parses.
    pub fn read_json<T: DeserializeOwned>(&self, path: &Path) -> Option<T> {
        match self {
            SecretStore::Files => files::read_json(path),
            SecretStore::Keychain(k) => serde_json::from_str(&k.read(path).ok()??).ok(),
        }
    }

    /// Keep `value` for `path`.
    pub fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> io::Result<()> {
        match self {
            SecretStore::Files => files::write_json(path, value),
            SecretStore::Keychain(k) => {
                k.write(path, &serde_json::to_string(value).map_err(io::Error::other)?)?;
                files::write_private(path, PLACEHOLDER.as_bytes())
            }
        }
    }

    /// Forget what is kept for `path` (nothing kept is fine).
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        if let SecretStore::Keychain(k) = self {
            k.delete(path)?;
        }
        files::remove(path)
    }

    /// Forget every secret kept under `dir`, and the directory.
    pub fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        if let SecretStore::Keychain(_) = self
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for e in entries.flatten() {
                self.remove(&e.path())?;
            }
        }
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn mock() -> SecretStore {
        SecretStore::Keychain(Keychain::with_builder(keyring::mock::default_credential_builder()))
    }

    /// What every store must do, whatever keeps the secret.
    fn keeps_and_forgets_secrets(store: &SecretStore, dir: &Path) {
        let session = dir.join("session.json");
        assert_eq!(store.read_json::<Value>(&session), None, "nothing yet");
        let secret = json!({"id_token": "eyJ.secret.token", "refresh_token": "r-1"});
        store.write_json(&session, &secret).expect("written");
        assert_eq!(store.read_json::<Value>(&session), Some(secret.clone()));
        let creds = dir.join("credentials/123456789012-abc.json");
        store.write_json(&creds, &json!({"SecretAccessKey": "s3cr3t"})).expect("written");
        store.write_json(&session, &json!({"id_token": "eyJ.newer"})).expect("replaced");
        assert_eq!(store.read_json::<Value>(&session), Some(json!({"id_token": "eyJ.newer"})));
        store.remove_dir(&dir.join("credentials")).expect("removed");
        assert_eq!(store.read_json::<Value>(&creds), None);
        store.remove(&session).expect("removed");
        store.remove(&session).expect("removing twice is fine");
        assert_eq!(store.read_json::<Value>(&session), None);
    }

    #[test]
    fn files_keep_and_forget_secrets() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        keeps_and_forgets_secrets(&SecretStore::Files, dir.path());
    }

    #[test]
    fn the_keychain_keeps_secrets_and_the_files_only_a_placeholder() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = mock();
        keeps_and_forgets_secrets(&store, dir.path());
        let session = dir.path().join("session.json");
        store.write_json(&session, &json!({"id_token": "eyJ.secret.token"})).expect("written");
        let on_disk = std::fs::read_to_string(&session).expect("a placeholder file");
        assert_eq!(on_disk, PLACEHOLDER);
        assert_eq!(SecretStore::Files.read_json::<Value>(&session).map(|v| v["id_token"].clone()), Some(Value::Null));
    }

    // No test against the real kernel keyring: keyring's keyutils store links every key into the
    // user's persistent keyring, and on the machines this project builds on (containers) the kernel
    // refuses that link (EACCES), so such a test could only fail or be skipped. keyring's mock store
    // stands in for it above.

    #[test]
    fn the_configuration_chooses_the_store() {
        assert!(matches!(SecretStore::for_config(None), SecretStore::Files));
        assert!(matches!(SecretStore::for_config(Some(false)), SecretStore::Files));
        assert!(matches!(SecretStore::for_config(Some(true)), SecretStore::Keychain(_)));
    }
}
