//! `completions`: a shell completion script for `strongroom`, generated
//! from the command line's own definition by `clap_complete`.

use clap::CommandFactory as _;

use crate::args::{Cli, CompletionShell};
use crate::exit::CliResult;

/// Writes the script for `shell` to stdout.
pub(crate) fn completions(shell: CompletionShell) -> CliResult {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "strongroom", &mut std::io::stdout());
    Ok(())
}
