//! `statectl passwd`: reset a password inside an archive (the root-password-reset procedure).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

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
then set one); --password-stdin reads one line and stores a SHA-512 crypt ($6$) hash with a \
random salt. Every other line of shadow and every other file stay byte-identical. An unknown user \
or a missing shadow leaves the archive untouched. ARCHIVE defaults to the next-boot bank's \
state.tgz; from a rescue system, name the mounted bank's archive.",
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
    )?;
    if out.json {
        out.json(&report)?;
    } else if !out.quiet {
        let what = if report.cleared { "cleared" } else { "set" };
        out.line(&format!(
            "{what} the password of `{}` in {}",
            report.user,
            report.archive.display()
        ));
    }
    Ok(Exit::Success.into())
}

fn read_password_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input; pipe one line, or use --clear");
    }
    Ok(password.to_string())
}
