//! `portcullis whoami`: user, team, groups and expiry of the session.

use crate::context::Ctx;
use crate::error::CliError;
use crate::render::session;

pub(crate) async fn run(ctx: &Ctx) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let s = ctx.session(&eff).await?;
    ctx.print(&session::session_json(&s, ctx.now), || session::whoami(&s, ctx.now));
    Ok(0)
}
