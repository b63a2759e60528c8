//! How results reach the user: JSON on stdout, human lines on stdout, notes and the one-line
//! error on stderr.

use std::io::Write;

use serde::Serialize;

/// Output settings from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Output {
        Output {
            json,
            quiet,
            verbose,
        }
    }

    /// Prints one JSON document on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        Ok(())
    }

    /// Prints a result line on stdout.
    pub fn line(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }

    /// A warning on stderr (unless `-q`).
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            eprintln!("statectl: warning: {text}");
        }
    }

    /// A detail on stderr, shown with `-v`.
    pub fn detail(&self, text: &str) {
        if self.verbose > 0 {
            eprintln!("statectl: {text}");
        }
    }

    /// The one error line; `-v` adds the cause chain, one cause a line.
    pub fn error(&self, err: &anyhow::Error) {
        eprintln!("statectl: error: {err:#}");
        if self.verbose > 0 {
            for (depth, cause) in err.chain().enumerate().skip(1) {
                eprintln!("  cause {depth}: {cause}");
            }
        }
    }
}
