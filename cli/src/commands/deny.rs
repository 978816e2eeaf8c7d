//! `portcullis deny` (approvers): deny someone's pending grant, saying why.

use clap::Args;
use portcullis_domain::GrantId;
use portcullis_domain::messages::GrantDeny;

use super::revoke::parse_grant_id;
use crate::context::Ctx;
use crate::error::CliError;
use crate::render::grants;

#[derive(Debug, Args)]
pub struct DenyArgs {
    #[arg(value_parser = parse_grant_id)]
    pub grant_id: GrantId,
    #[arg(long)]
    pub reason: String,
}

pub(crate) async fn run(ctx: &Ctx, args: &DenyArgs) -> Result<u8, CliError> {
    let (result, ..) = ctx.ask_me(&GrantDeny { grant_id: args.grant_id.clone(), reason: args.reason.clone() }).await?;
    ctx.print(&result, || grants::decided(&result.grant, ctx.now));
    Ok(0)
}
