//! Failures before any command runs: clap's usage errors, the drop-in scripts' refusals, and a
//! reader that went away (`statectl status | head -1`).
//!
//! A usage error is one line, `statectl: error: <problem>; usage: <usage>; see --help`, exit 2
//! (clap's tips go in parentheses after the problem). `--help` and `--version` print as clap
//! prints them, exit 0; a bare `statectl` prints the help on stderr, exit 2.

use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::exit::Exit;
use crate::syslog::{self, Severity};

/// Reports a clap parse failure (or prints help/version) and gives the exit status.
pub fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            Exit::Success.into()
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            Exit::Usage.into()
        }
        _ => {
            let line = usage_line(&err.render().to_string());
            syslog::log(Severity::Error, &format!("error: {line}"));
            eprintln!("statectl: error: {line}");
            Exit::Usage.into()
        }
    }
}

/// A drop-in script's own refusal, worded as ESXi words it; exit 1 as the script does.
pub fn refuse(line: &str) -> ExitCode {
    syslog::log(Severity::Error, line);
    eprintln!("{line}");
    Exit::Failure.into()
}

/// A drop-in script's usage line on stderr; exit 0, as the 6.7 script does.
pub fn script_usage(line: &str) -> ExitCode {
    eprintln!("{line}");
    Exit::Success.into()
}

/// clap's rendered error as one line.
fn usage_line(rendered: &str) -> String {
    let mut problem: Vec<String> = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("For more information") || usage.is_some() {
            continue;
        }
        if let Some(text) = line.strip_prefix("Usage:") {
            usage = Some(text.trim().to_string());
        } else if let Some(tip) = line.strip_prefix("tip:") {
            problem.push(format!("(tip: {})", tip.trim()));
        } else {
            problem.push(
                line.strip_prefix("error:")
                    .unwrap_or(line)
                    .trim()
                    .to_string(),
            );
        }
    }
    let mut text = problem.join(" ");
    if let Some(usage) = usage {
        text.push_str(&format!("; usage: {usage}"));
    }
    text.push_str("; see --help");
    text
}

/// Restores the default SIGPIPE action, so writing to a closed pipe ends the process quietly
/// as it does for any Unix filter (Rust ignores SIGPIPE, which turns every print into an
/// error). Safe for the banks: every write there is atomic and survives a kill at any instant,
/// and output is printed only after the work is done.
pub fn die_quietly_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to SIG_DFL has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn line_for(args: &[&str]) -> (ErrorKind, String) {
        let err = crate::cli::Cli::try_parse_from(args).unwrap_err();
        (err.kind(), usage_line(&err.render().to_string()))
    }

    #[test]
    fn unknown_flag_is_one_line_with_usage() {
        let (kind, line) = line_for(&["statectl", "backup", "--bogus"]);
        assert_eq!(kind, ErrorKind::UnknownArgument);
        assert!(
            line.starts_with("unexpected argument '--bogus' found"),
            "{line}"
        );
        assert!(
            line.contains("; usage: statectl backup [OPTIONS]"),
            "{line}"
        );
        assert!(line.ends_with("; see --help"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn clap_tips_are_kept() {
        let (_, line) = line_for(&["statectl", "backup", "--forc"]);
        assert!(
            line.contains("(tip: a similar argument exists: '--force')"),
            "{line}"
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        let (_, line) = line_for(&["statectl", "backup", "--wait", "soon"]);
        assert!(line.contains("--wait"), "{line}");
    }
}
