//! `portcullis completions`: shell completions.

use clap::Args;

use crate::error::CliError;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: Shell,
}

/// Shells for completions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn run(args: &CompletionsArgs) -> Result<u8, CliError> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut super::command(), "portcullis", &mut std::io::stdout());
    Ok(0)
}
