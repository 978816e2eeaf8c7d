//! `portcullis revoke-user` (admins): end every grant of a user, and their sessions in every account.

use clap::Args;
use portcullis_domain::messages::GrantRevokeAll;

use crate::context::Ctx;
use crate::error::CliError;
use crate::render::revocation;

#[derive(Debug, Args)]
pub struct RevokeUserArgs {
    pub user: String,
    #[arg(long)]
    pub reason: String,
}

pub(crate) async fn run(ctx: &Ctx, args: &RevokeUserArgs) -> Result<u8, CliError> {
    let (result, ..) = ctx.ask_me(&GrantRevokeAll { user: args.user.clone(), reason: args.reason.clone() }).await?;
    ctx.print(&result, || revocation::revocation_text(&result));
    Ok(0)
}
