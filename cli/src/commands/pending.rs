//! `portcullis pending` (approvers): grants waiting for their approval, and break-glass uses
//! waiting for their review.

use portcullis_domain::messages::GrantPending;

use crate::context::Ctx;
use crate::error::CliError;
use crate::render::grants;

pub(crate) async fn run(ctx: &Ctx) -> Result<u8, CliError> {
    let (result, ..) = ctx.ask_me(&GrantPending {}).await?;
    ctx.print(&result, || grants::pending(&result, ctx.now));
    Ok(0)
}
