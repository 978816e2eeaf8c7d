//! `portcullis exec`: run a command with the person's credentials in its environment.

use clap::Args;

use super::credentials::{CredentialsArgs, issue};
use crate::context::Ctx;
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub credentials: CredentialsArgs,
    /// The AWS region for the command (default: the --profile's region, else your AWS_REGION or
    /// AWS_DEFAULT_REGION as they are, else the stack's region).
    #[arg(long, value_name = "REGION")]
    pub aws_region: Option<String>,
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
        .env("AWS_CREDENTIAL_EXPIRATION", creds.expiration.to_rfc3339());
    let caller = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let asked = args.aws_region.clone().or(eff.profile().region);
    if let Some(region) =
        command_region(asked.as_deref(), caller("AWS_REGION"), caller("AWS_DEFAULT_REGION"), &eff.region.0)
    {
        cmd.env("AWS_REGION", &region).env("AWS_DEFAULT_REGION", &region);
    }
    if let Some((endpoint, _)) = &eff.endpoint_url {
        cmd.env("AWS_ENDPOINT_URL", endpoint);
    }
    let status = cmd
        .status()
        .map_err(|e| CliError::local_hint(format!("cannot run {program}: {e}"), "is it installed and on PATH?"))?;
    Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
}

/// The region to put in the command's environment: the one asked for, else none when the caller
/// has one (theirs is kept as it is), else the stack's.
fn command_region(
    asked: Option<&str>,
    aws_region: Option<String>,
    aws_default_region: Option<String>,
    stack: &str,
) -> Option<String> {
    match (asked, aws_region.or(aws_default_region)) {
        (Some(r), _) => Some(r.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(stack.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::command_region;

    #[test]
    fn the_callers_region_is_kept_unless_another_is_asked_for() {
        assert_eq!(command_region(None, Some("eu-west-1".into()), None, "us-east-1"), None);
        assert_eq!(command_region(None, None, Some("eu-west-2".into()), "us-east-1"), None);
        assert_eq!(command_region(None, None, None, "us-east-1").as_deref(), Some("us-east-1"));
        assert_eq!(
            command_region(Some("ap-south-1"), Some("eu-west-1".into()), None, "x").as_deref(),
            Some("ap-south-1")
        );
    }
}
