//! `portcullis dev-issuer init` and `portcullis dev-token` (development): the local identity issuer;
//! the work is in [`crate::operator`].

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::parse_duration;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum DevIssuerCommand {
    /// Generate the signing key and JWKS (kept if present).
    #[command(after_help = "Example:\n  portcullis dev-issuer init --dir .portcullis/dev-issuer")]
    Init {
        #[arg(long, default_value = ".portcullis/dev-issuer")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DevTokenArgs {
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub team: Option<String>,
    /// Group claim values (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Token lifetime, e.g. 1h.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub ttl: u64,
    /// Issuer directory.
    #[arg(long, default_value = ".portcullis/dev-issuer")]
    pub dir: PathBuf,
    /// The workers' settings file (default: $PORTCULLIS_CONFIG, else the embedded default).
    #[arg(long)]
    pub worker_config: Option<PathBuf>,
}

pub(crate) fn run_issuer(command: &DevIssuerCommand) -> Result<u8, CliError> {
    match command {
        DevIssuerCommand::Init { dir } => crate::operator::dev_issuer_init(dir),
    }
}

pub(crate) fn run_token(args: &DevTokenArgs) -> Result<u8, CliError> {
    crate::operator::dev_token(
        &args.user,
        args.team.as_deref(),
        &args.groups,
        args.ttl,
        &args.dir,
        args.worker_config.as_deref(),
    )
}
