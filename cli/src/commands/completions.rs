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
    // Into memory first: clap_complete panics on a failed write, and `| head` closes the pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut super::command(), "portcullis", &mut script);
    crate::output::emit(&String::from_utf8_lossy(&script));
    Ok(0)
}
