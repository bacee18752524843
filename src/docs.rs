//! Shell completion scripts and man pages, generated from the clap definition in [`crate::cli`]
//! so they never drift from the flags. Returns bytes; the caller prints them (a closed stdout
//! must be an error to handle, and clap_complete's own writer panics on one).

use clap::CommandFactory;
use clap_complete::{Generator, Shell};

use crate::cli::Cli;

/// Why a page could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// `loadchain man NAME` with a NAME that is not a subcommand.
    #[error("no subcommand {name:?}; choose one of: {known}")]
    UnknownCommand {
        /// What was asked for.
        name: String,
        /// The subcommands, comma-separated.
        known: String,
    },
    /// Rendering into memory failed (in practice unreachable: the sink is a `Vec`).
    #[error("cannot render: {0}")]
    Render(#[from] std::io::Error),
}

/// The completion script for `shell`, for the binary named `loadchain`.
pub fn completions(shell: Shell) -> Result<Vec<u8>, DocsError> {
    let mut cmd = Cli::command();
    cmd.set_bin_name("loadchain");
    cmd.build();
    let mut out = Vec::new();
    shell.try_generate(&cmd, &mut out)?;
    Ok(out)
}

/// The roff man page of `loadchain` (section 1), or of one subcommand (`loadchain-sweep(1)`,
/// as git names its pages), for `man -l -` or a file in a `man1/` folder.
pub fn man_page(subcommand: Option<&str>) -> Result<Vec<u8>, DocsError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // build() gives subcommands their `loadchain-sweep` page names and `loadchain sweep` usage.
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => {
            cmd.find_subcommand(name)
                .cloned()
                .ok_or_else(|| DocsError::UnknownCommand {
                    name: name.to_string(),
                    known: cmd
                        .get_subcommands()
                        .map(|s| s.get_name().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("loadchain {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let text = String::from_utf8(completions(shell).unwrap()).unwrap();
            for sub in ["sweep", "run", "mock", "report", "completions", "man"] {
                assert!(text.contains(sub), "{shell}: no {sub}");
            }
            assert!(text.contains("limits"), "{shell}: no --limits");
        }
    }

    #[test]
    fn subcommand_pages_carry_their_own_flags_and_unknown_names_list_the_choices() {
        let page = String::from_utf8(man_page(Some("sweep")).unwrap()).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..40]);
        assert!(page.contains(".TH loadchain-sweep 1"), "{page}");
        assert!(page.contains(&format!("\"loadchain {}\"", env!("CARGO_PKG_VERSION"))));
        assert!(page.contains("limits"));
        let err = man_page(Some("swep")).unwrap_err().to_string();
        assert!(
            err.contains("\"swep\"") && err.contains("sweep, run"),
            "{err}"
        );
    }
}
