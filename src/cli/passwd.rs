//! `statectl passwd`: reset a password inside an archive (the root-password-reset procedure).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, Termios};

use super::Output;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::archive_path::archive_or_default;
use crate::ops::passwd::{passwd, NewPassword};

/// Reset USER's password inside an archive (root-password reset)
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Rewrites USER's hash field in etc/shadow inside the archive and replaces the \
archive atomically, under the bank lock. --clear empties the field (log in without a password, \
then set one); --password-stdin reads one line (more lines are an error; from a terminal it asks \
twice, without echo) and stores a SHA-512 crypt ($6$) hash with a random salt. Every other line \
of shadow and every other file stay byte-identical. An unknown user or a missing shadow leaves \
the archive untouched. ARCHIVE defaults to the next-boot bank's state.tgz; then, when the root's \
own etc/shadow holds the same USER line as the archive did (the root is that host), the live \
file gets the same change (atomic, mode and owner kept), so the next backup keeps it. With \
--archive, or from a rescue system (another USER line), the live file is never touched, and a \
warning says when the next backup of this root would revert the change.",
    after_help = "Examples:\n  statectl passwd root --clear --archive /mnt/bootbank/state.tgz\n  \
printf '%s\\n' \"$NEWPASS\" | statectl passwd root --password-stdin"
)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["clear", "password_stdin"])))]
pub struct PasswdArgs {
    /// The account whose password is reset
    #[arg(value_name = "USER")]
    pub user: String,
    /// Empty the hash field
    #[arg(long)]
    pub clear: bool,
    /// Read the new password (one line) from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// The archive [default: the next-boot bank's state.tgz]
    #[arg(long, value_name = "FILE")]
    pub archive: Option<PathBuf>,
    /// Seconds to wait for another run holding the bank lock
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

pub fn run(host: &Host, out: &Output, args: &PasswdArgs) -> Result<ExitCode> {
    let archive = archive_or_default(host, args.archive.as_ref())?;
    let new = if args.clear {
        NewPassword::Clear
    } else {
        NewPassword::Plain(read_password_line()?)
    };
    let report = passwd(
        host,
        &archive,
        &args.user,
        &new,
        Duration::from_secs(args.wait),
        args.archive.is_none(),
    )?;
    out.warn_all(&report.warnings);
    if out.json {
        out.json(&report)?;
    } else if !out.quiet {
        let what = if report.cleared { "cleared" } else { "set" };
        out.line(&format!(
            "{what} the password of `{}` in {}",
            report.user,
            report.archive.display()
        ));
        if let Some(live) = &report.live {
            out.line(&format!("{what} it in the live {} too", live.display()));
        }
    }
    Ok(Exit::Success.into())
}

/// The longest input taken as a password line (anything longer is not one line of a password).
const MAX_INPUT: u64 = 64 << 10;

/// The new password: from a terminal asked twice without echo, else exactly one line of stdin.
fn read_password_line() -> Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden("New password: ")?;
        let second = prompt_hidden("Retype new password: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed; run the command again");
        }
        first
    } else {
        let mut input = Vec::new();
        stdin
            .lock()
            .take(MAX_INPUT)
            .read_to_end(&mut input)
            .context("cannot read the password from standard input")?;
        one_line(&input)?
    };
    if password.is_empty() {
        bail!("no password on standard input; pipe one line, or use --clear");
    }
    Ok(password)
}

/// The one line of `input` (its line break not included); a second line is an error.
fn one_line(input: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(input)
        .map_err(|_| anyhow::anyhow!("the password on standard input is not UTF-8 text"))?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains(['\n', '\r']) {
        bail!(
            "standard input holds more than one line; pipe exactly one line (the password), \
             nothing was changed"
        );
    }
    Ok(line.to_string())
}

/// Asks on stderr and reads one line from the terminal with echo off (restored after).
fn prompt_hidden(prompt: &str) -> Result<String> {
    // Echo off before the prompt: what is typed after seeing it is never shown.
    let echo = EchoOff::new()?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    drop(echo);
    eprintln!();
    read.context("cannot read the password from the terminal")?;
    if !line.ends_with('\n') {
        bail!("no password typed (end of input); nothing was changed");
    }
    one_line(line.as_bytes())
}

/// Terminal echo turned off on stdin for as long as it lives.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn new() -> Result<EchoOff> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)
            .map_err(std::io::Error::from)
            .context("cannot read the terminal settings of standard input")?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)
            .map_err(std::io::Error::from)
            .context("cannot turn off the terminal echo")?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_line_is_a_password() {
        assert_eq!(one_line(b"secret\n").unwrap(), "secret");
        assert_eq!(one_line(b"secret\r\n").unwrap(), "secret");
        assert_eq!(one_line(b"secret").unwrap(), "secret");
        assert!(one_line(b"secret\nmore\n").is_err());
        assert!(one_line(b"secret\n\n").is_err());
    }
}
