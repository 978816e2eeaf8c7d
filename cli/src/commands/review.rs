//! `portcullis review` (approvers): review someone's break-glass grant; an unjustified verdict
//! revokes it.

use clap::Args;
use portcullis_domain::GrantId;
use portcullis_domain::grant::Verdict;
use portcullis_domain::messages::GrantReview;

use super::revoke::parse_grant_id;
use crate::context::Ctx;
use crate::error::CliError;
use crate::render::grants;

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[arg(value_parser = parse_grant_id)]
    pub grant_id: GrantId,
    #[arg(long, value_enum)]
    pub verdict: VerdictArg,
    /// What you found (recorded, and announced on the bus).
    #[arg(long)]
    pub note: String,
}

/// A review's verdict.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VerdictArg {
    Justified,
    Unjustified,
}

impl From<VerdictArg> for Verdict {
    fn from(v: VerdictArg) -> Self {
        match v {
            VerdictArg::Justified => Verdict::Justified,
            VerdictArg::Unjustified => Verdict::Unjustified,
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, args: &ReviewArgs) -> Result<u8, CliError> {
    let body = GrantReview { grant_id: args.grant_id.clone(), verdict: args.verdict.into(), note: args.note.clone() };
    let (result, ..) = ctx.ask_me(&body).await?;
    ctx.print(&result, || grants::decided(&result.grant, ctx.now));
    Ok(0)
}
