//! `portcullis exec`: run a command with the person's credentials in its environment.

use clap::Args;

use super::credentials::{CredentialsArgs, issue};
use crate::context::Ctx;
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub credentials: CredentialsArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub(crate) async fn run(ctx: &Ctx, args: &ExecArgs) -> Result<u8, CliError> {
    let eff = ctx.effective()?;
    let creds = issue(ctx, &args.credentials).await?;
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        CliError::usage("no command given", "portcullis exec --account A -- aws sts get-caller-identity")
    })?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest)
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .env("AWS_SESSION_TOKEN", &creds.session_token)
        .env("AWS_CREDENTIAL_EXPIRATION", creds.expiration.to_rfc3339())
        .env("AWS_REGION", &eff.region.0)
        .env("AWS_DEFAULT_REGION", &eff.region.0);
    if let Some((endpoint, _)) = &eff.endpoint_url {
        cmd.env("AWS_ENDPOINT_URL", endpoint);
    }
    let status = cmd
        .status()
        .map_err(|e| CliError::local_hint(format!("cannot run {program}: {e}"), "is it installed and on PATH?"))?;
    Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
}
