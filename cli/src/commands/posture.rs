//! `portcullis posture` (posture reader groups): the latest evidence per control.

use clap::Args;
use portcullis_domain::messages::PostureStatus;

use crate::context::Ctx;
use crate::error::CliError;
use crate::render::posture;

#[derive(Debug, Args)]
pub struct PostureArgs {
    #[arg(long)]
    pub account: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
}

pub(crate) async fn run(ctx: &Ctx, args: &PostureArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let account = args.account.as_deref().map(|a| ctx.account(&eff, Some(a))).transpose()?;
    let session = ctx.session(&eff).await?;
    let result = ctx.ask(&eff, &session, &PostureStatus { account, region: args.region.clone() }).await?;
    ctx.print(&result, || posture::status(&result, ctx.now));
    Ok(0)
}
