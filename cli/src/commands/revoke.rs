//! `portcullis revoke`: end one grant now (the owner's, or anyone's for admins), and the owner's
//! sessions in its account; the cached credentials of that account go with it.

use clap::Args;
use portcullis_domain::GrantId;
use portcullis_domain::messages::GrantRevoke;

use crate::config::cache_dir;
use crate::context::Ctx;
use crate::credentials;
use crate::error::CliError;
use crate::render::revocation;

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The grant id (`portcullis grants` lists them).
    #[arg(value_parser = parse_grant_id)]
    pub grant_id: GrantId,
    #[arg(long)]
    pub reason: String,
}

/// A grant id, checked as the worker checks it (a malformed one is a usage error).
pub(crate) fn parse_grant_id(s: &str) -> Result<GrantId, String> {
    GrantId::parse(s).map_err(|e| e.to_string())
}

pub(crate) async fn run(ctx: &Ctx, args: &RevokeArgs) -> Result<u8, CliError> {
    let body = GrantRevoke { grant_id: args.grant_id.clone(), reason: args.reason.clone() };
    let (result, session, eff) = ctx.ask_me(&body).await?;
    let cache = cache_dir();
    let store = eff.secret_store();
    for account in &result.accounts {
        let _ = store.remove(&credentials::path_for(&cache, &session.issuer, &session.subject, account));
    }
    ctx.print(&result, || revocation::revocation_text(&result));
    Ok(0)
}
