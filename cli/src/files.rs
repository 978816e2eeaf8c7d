//! Private files: the CLI's caches hold tokens and credentials, so every file is created with mode
//! 0600 in a 0700 directory, written atomically (a temporary file renamed over the old one, so a
//! concurrent reader never sees half a file), and guarded by an exclusive lock file where two
//! processes could race (two `credential_process` invocations refreshing the same credentials, or
//! a rotating refresh token used twice, which the IdP treats as theft).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Create `dir` (and parents) private to the user.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Write `bytes` to `path` with mode 0600, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut f = open_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Write `value` as pretty JSON to `path` (0600, atomic).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_private(path, &text)
}

/// Read JSON from `path`; `None` when the file does not exist or no longer parses (a cache written
/// by another version is simply rebuilt).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Remove `path`; a missing file is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// An exclusive lock on `<path>.lock`, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Block until this process holds the lock for `path`.
    pub fn acquire(path: &Path) -> std::io::Result<FileLock> {
        let lock_path = path.with_extension("lock");
        if let Some(dir) = lock_path.parent() {
            private_dir(dir)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&lock_path)?;
        file.lock()?;
        Ok(FileLock { file, path: lock_path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The mode bits of `path` (tests and `whoami`).
#[cfg(unix)]
pub fn mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_files_are_0600_in_a_0700_directory_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/session.json");
        write_json(&path, &serde_json::json!({"v": 1})).unwrap();
        write_json(&path, &serde_json::json!({"v": 2})).unwrap();
        assert_eq!(mode(&path).unwrap(), 0o600);
        assert_eq!(mode(path.parent().unwrap()).unwrap(), 0o700);
        let v: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(v["v"], 2);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        std::fs::write(&path, "not json").unwrap();
        assert!(read_json::<serde_json::Value>(&path).is_none());
        remove(&path).unwrap();
        remove(&path).unwrap();
        let _lock = FileLock::acquire(&path).unwrap();
    }
}
