//! `statectl completions SHELL`: shell completion scripts, generated from the clap definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use clap_complete::Shell;

use super::Output;
use crate::exit::Exit;

/// Print a shell completion script on stdout
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Prints the completion script for SHELL, generated from the same definition \
as --help, so it knows every command and option. Changes nothing; install it where your shell \
looks.",
    after_help = "Examples:\n  statectl completions bash > /etc/bash_completion.d/statectl\n  \
statectl completions zsh > /usr/local/share/zsh/site-functions/_statectl\n  \
statectl completions fish > ~/.config/fish/completions/statectl.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

pub fn run(out: &Output, args: &CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut super::command(), "statectl", &mut script);
    out.text(&String::from_utf8_lossy(&script));
    Ok(Exit::Success.into())
}
