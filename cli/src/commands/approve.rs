//! `portcullis approve` (approvers): approve someone's pending grant.

use clap::Args;
use portcullis_domain::GrantId;
use portcullis_domain::messages::GrantApprove;

use super::revoke::parse_grant_id;
use crate::context::Ctx;
use crate::error::CliError;
use crate::render::grants;

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[arg(value_parser = parse_grant_id)]
    pub grant_id: GrantId,
}

pub(crate) async fn run(ctx: &Ctx, args: &ApproveArgs) -> Result<u8, CliError> {
    let (result, ..) = ctx.ask_me(&GrantApprove { grant_id: args.grant_id.clone() }).await?;
    ctx.print(&result, || grants::decided(&result.grant, ctx.now));
    Ok(0)
}
