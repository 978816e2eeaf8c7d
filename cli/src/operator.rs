//! Operator and development commands: the workers' settings (which `stack deploy`, in
//! `commands/stack.rs`, reads too) and the local development issuer. These read the *workers'* settings
//! (`$PORTCULLIS_CONFIG` or `--worker-config`, else the embedded default); the everyday commands need
//! neither.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_runtime::config::Settings;

use crate::dev_issuer as dev;
use crate::error::CliError;

pub(crate) fn settings(path: Option<&Path>) -> Result<(Settings, String), CliError> {
    let (settings, source) = match path {
        Some(p) => (Settings::load_from(Some(p)), p.display().to_string()),
        None => match std::env::var_os("PORTCULLIS_CONFIG") {
            Some(p) => (Settings::load(), format!("PORTCULLIS_CONFIG={}", PathBuf::from(p).display())),
            None => (Settings::load(), "the embedded default settings (config/local.toml)".to_owned()),
        },
    };
    Ok((settings.map_err(|e| CliError::local_hint(e.to_string(), "fix the workers' settings file"))?, source))
}

/// `portcullis dev-issuer init`.
pub fn dev_issuer_init(dir: &Path) -> Result<u8, CliError> {
    let jwks = dev::init(dir).map_err(|e| CliError::local(e.to_string()))?;
    crate::output::emit(&format!("{}\n", jwks.display()));
    Ok(0)
}

/// `portcullis dev-token`.
pub fn dev_token(
    user: &str,
    team: Option<&str>,
    groups: &[String],
    ttl: u64,
    dir: &Path,
    worker_config: Option<&Path>,
) -> Result<u8, CliError> {
    let (s, _) = settings(worker_config)?;
    let token = dev::mint(
        dir,
        &dev::DevClaims {
            issuer: s.identity.issuer.clone(),
            audience: s.identity.audience.clone(),
            user: user.to_owned(),
            team: team.map(str::to_owned),
            groups: groups.to_vec(),
            ttl: Duration::from_secs(ttl),
            issued_at: None,
        },
    )
    .map_err(|e| CliError::local(e.to_string()))?;
    crate::output::emit(&format!("{token}\n"));
    Ok(0)
}
