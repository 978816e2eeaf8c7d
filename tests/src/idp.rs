//! The test OpenID provider (`tests/idp`, oidc-provider from npm) as a child process on loopback.
//!
//! [`Idp::start`] runs `node tests/idp/server.mjs --port 0` and reads the issuer from its `READY`
//! line. A missing Node or a missing `npm ci` is a loud failure, never a skip. The process is
//! stopped (by its PID) when the [`Idp`] is dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running IdP.
#[derive(Debug)]
pub struct Idp {
    child: Child,
    /// The issuer, exactly as in its tokens (`http://127.0.0.1:<port>`).
    pub issuer: String,
    _users: tempfile::NamedTempFile,
}

/// `tests/idp`.
pub fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("idp")
}

/// `tests/idp/drive.mjs`, the scripted browser and user.
pub fn drive_script() -> PathBuf {
    idp_dir().join("drive.mjs")
}

impl Idp {
    /// Start the IdP with these users (`{"alice": {"team": "...", "groups": [...]}}`) and extra flags.
    pub fn start(users: &serde_json::Value, extra: &[&str]) -> Idp {
        let dir = idp_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test IdP is not installed: run `npm ci` in {} (make test does)",
            dir.display()
        );
        let users_file = tempfile::NamedTempFile::new().expect("a users file");
        std::fs::write(users_file.path(), users.to_string()).expect("users written");
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .args(["--port", "0", "--quiet", "--users"])
            .arg(users_file.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` for the test IdP ({e}): install Node.js 20+"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the IdP's first line");
        let issuer = line.trim().strip_prefix("READY ").unwrap_or_else(|| panic!("the IdP did not start: {line:?}"));
        Idp { issuer: issuer.to_owned(), child, _users: users_file }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
