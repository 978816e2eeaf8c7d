//! `portcullis grants`: the person's pending and active grants (and with `--all`, those that ended).
//! What is live is remembered, so that `portcullis credentials` knows when its cache is stale.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Args;
use portcullis_domain::AccountId;
use portcullis_domain::grant::GrantStatus;
use portcullis_domain::messages::GrantList;

use crate::config::cache_dir;
use crate::context::{Ctx, local_io};
use crate::error::CliError;
use crate::render::grants;
use crate::{credentials, files};

#[derive(Debug, Args)]
pub struct GrantsArgs {
    #[arg(long)]
    pub account: Option<String>,
    /// Also denied, expired and revoked grants.
    #[arg(long)]
    pub all: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: &GrantsArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let account = args.account.as_deref().map(|a| ctx.account(&eff, Some(a))).transpose()?;
    let session = ctx.session(&eff).await?;
    let result = ctx.ask(&eff, &session, &GrantList { account: account.clone(), include_ended: args.all }).await?;
    let path = credentials::known_grants_path(&cache_dir(), &session.issuer, &session.subject);
    let mut known = credentials::load_known(&path);
    let mut by_account: BTreeMap<AccountId, Vec<(String, DateTime<Utc>)>> = BTreeMap::new();
    for g in result.grants.iter().filter(|g| g.status == GrantStatus::Active) {
        by_account.entry(g.account.clone()).or_default().push((g.id.to_string(), g.expires_at));
    }
    match &account {
        Some(a) => known.replace(a, by_account.remove(a).unwrap_or_default()),
        None => {
            known.accounts.clear();
            for (a, list) in by_account {
                known.replace(&a, list);
            }
        }
    }
    files::write_json(&path, &known).map_err(local_io(&path))?;
    ctx.print(&result, || {
        if result.grants.is_empty() { "no grants\n".into() } else { grants::grants_table(&result.grants, ctx.now) }
    });
    Ok(0)
}
