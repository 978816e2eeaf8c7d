//! `portcullis configure-profile`: a `credential_process` profile in `~/.aws/config`, written
//! idempotently (other profiles untouched).

use clap::Args;
use serde_json::json;

use crate::aws_profile;
use crate::context::{Ctx, local_io};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct ConfigureProfileArgs {
    /// Profile name.
    pub name: String,
    #[arg(long)]
    pub account: Option<String>,
    /// Region for the profile (default: the --profile's region, else the stack's).
    #[arg(long = "profile-region")]
    pub profile_region: Option<String>,
}

pub(crate) fn run(ctx: &Ctx, args: &ConfigureProfileArgs) -> Result<u8, CliError> {
    let name = &args.name;
    let eff = ctx.effective()?;
    let account = ctx.account(&eff, args.account.as_deref())?;
    let exe = std::env::current_exe().map_err(|e| CliError::local(e.to_string()))?;
    let (command, warning) = aws_profile::stable_command(&exe, std::env::var_os("PATH").as_deref());
    if let Some(w) = warning {
        eprintln!("note: {w}");
    }
    let path = aws_profile::aws_config_path();
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines = vec![(
        "credential_process".to_owned(),
        aws_profile::credential_process(&command, account.as_str(), ctx.cli.config.as_deref()),
    )];
    let region = args.profile_region.clone().or(eff.profile().region).unwrap_or_else(|| eff.region.0.clone());
    lines.push(("region".to_owned(), region));
    if let Some((endpoint, _)) = &eff.endpoint_url {
        lines.push(("endpoint_url".to_owned(), endpoint.clone()));
    }
    let after = aws_profile::upsert_profile(&before, name, &lines);
    let changed = after != before;
    if changed {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(local_io(dir))?;
        }
        std::fs::write(&path, &after).map_err(local_io(&path))?;
    }
    ctx.print(&json!({ "profile": name, "file": path, "changed": changed }), || {
        format!(
            "{} profile {name} in {}\ntry: aws --profile {name} sts get-caller-identity\n",
            if changed { "wrote" } else { "unchanged:" },
            path.display()
        )
    });
    Ok(0)
}
