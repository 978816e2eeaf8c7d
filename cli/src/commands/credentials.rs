//! `portcullis credentials`: temporary credentials for the person's live grants in one account, in
//! the AWS `credential_process` shape, served from the cache while still good (see
//! [`crate::credentials`]); `exec` and `console` get theirs the same way.

use clap::Args;
use portcullis_domain::messages::{CredentialsRequest, ProcessCredentials};

use super::parse_session_duration;
use crate::config::cache_dir;
use crate::context::{Ctx, local_io};
use crate::credentials::{self, CachedCredentials};
use crate::error::CliError;
use crate::files;

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// 12-digit account (default: default_account from the configuration).
    #[arg(long)]
    pub account: Option<String>,
    /// Session length, e.g. 900, 30m, 1h (default: until your latest grant expires, capped).
    #[arg(long, value_parser = parse_session_duration)]
    pub duration: Option<u64>,
    /// Ask for new credentials even if cached ones are still good.
    #[arg(long)]
    pub refresh: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: &CredentialsArgs) -> Result<u8, CliError> {
    let creds = issue(ctx, args).await?;
    let text = serde_json::to_string_pretty(&creds).map_err(|e| CliError::local(e.to_string()))?;
    crate::output::emit(&format!("{text}\n"));
    Ok(0)
}

/// Cached credentials when still good, else fresh ones (sealed to a key made for the request,
/// opened here, then cached).
pub(crate) async fn issue(ctx: &Ctx, args: &CredentialsArgs) -> Result<ProcessCredentials, CliError> {
    let eff = ctx.effective()?;
    let account = ctx.account(&eff, args.account.as_deref())?;
    let session = ctx.session(&eff).await?;
    let cache = cache_dir();
    let path = credentials::path_for(&cache, &session.issuer, &session.subject, &account);
    let known = credentials::load_known(&credentials::known_grants_path(&cache, &session.issuer, &session.subject));
    let live = known.live(&account, ctx.now);
    let margin = eff.credentials_refresh_seconds();
    let good = |c: &CachedCredentials| {
        !args.refresh && args.duration.is_none() && credentials::still_good(c, &live, ctx.now, margin)
    };
    let store = eff.secret_store();
    if let Some(c) = store.read_json::<CachedCredentials>(&path).filter(good) {
        return Ok(c.credentials);
    }
    // One process asks; concurrent ones (several AWS commands at once) wait and reuse its answer.
    let _lock = files::FileLock::acquire(&path).map_err(local_io(&path))?;
    if let Some(c) = store.read_json::<CachedCredentials>(&path).filter(good) {
        return Ok(c.credentials);
    }
    let body = CredentialsRequest { account, duration: args.duration, reply_key: None };
    let result = ctx.ask(&eff, &session, &body).await?;
    let issued = result
        .credentials
        .ok_or_else(|| CliError::local("the credentials reply could not be read: it holds no credentials"))?;
    let grant_ids = result.grant_ids.iter().map(ToString::to_string).collect();
    let cached = CachedCredentials { credentials: issued.clone(), grant_ids, issued_at: ctx.now };
    store.write_json(&path, &cached).map_err(local_io(&path))?;
    Ok(issued)
}
