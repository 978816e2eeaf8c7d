//! `portcullis stack deploy` (operators): the flags; the deployment itself is
//! [`crate::operator::stack_deploy`].

use std::path::PathBuf;

use clap::Subcommand;

use super::parse_param;
use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Create or update the stack named after `stack.prefix` of the workers' settings.
    #[command(
        after_help = "Example:\n  portcullis stack deploy --parameter OidcIssuerUrl=https://idp.example.com/realms/acme"
    )]
    Deploy {
        /// Template file (default: the one built into this binary).
        #[arg(long)]
        template: Option<PathBuf>,
        /// Extra parameters as Key=Value (repeatable).
        #[arg(long = "parameter", value_parser = parse_param)]
        parameters: Vec<(String, String)>,
        /// The workers' settings file (default: $PORTCULLIS_CONFIG, else the embedded default).
        #[arg(long)]
        worker_config: Option<PathBuf>,
    },
}

pub(crate) async fn run(command: &StackCommand) -> Result<u8, CliError> {
    match command {
        StackCommand::Deploy { template, parameters, worker_config } => {
            crate::operator::stack_deploy(template.as_deref(), parameters, worker_config.as_deref()).await
        }
    }
}
