//! `statectl export`: write an ESXi configBundle of this host into a directory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::Output;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::export::{export, ExportOptions};
use crate::syslog::{self, Severity};

/// Write configBundle-<hostname>-<UTC stamp>.tgz (Manifest.txt + state.tgz) into a directory
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Writes configBundle-<hostname>-<UTC yyyymmddThhmmssZ>.tgz into DIR in the \
layout of ESXi's firmwareConfig.sh --backup: Manifest.txt (RELEASELEVEL = `vmware -l` output, \
where that is missing `VMware ESXi <version of the bank's build>` with a warning that ESXi may \
refuse it; UUID of this host; KERNELOPTS from boot.cfg's kernelopt; USEROPTS from the bank's \
useropts.gz) and state.tgz, \
the next-boot bank's current archive, verified first (export does not run a backup: run \
`statectl backup` first to include pending changes). Written atomically, 0600. With --keep N, \
this host's older bundles in DIR beyond the newest N are removed; only files named exactly \
configBundle-<this host>-<stamp>.tgz are ever removed. `statectl install BUNDLE` puts it back. \
Off a terminal (cron) it prints nothing unless -v: the result and its warnings go to syslog.",
    after_help = "Examples:\n  statectl backup && statectl export --to /vmfs/volumes/ds1/backups\n  \
statectl export --to /vmfs/volumes/ds1/backups --keep 7   # nightly, a week kept"
)]
pub struct ExportArgs {
    /// Directory to write the bundle into
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Keep only the newest N bundles of this host in DIR
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
}

pub fn run(host: &Host, out: &Output, args: &ExportArgs) -> Result<ExitCode> {
    let options = ExportOptions {
        to: args.to.clone(),
        keep: args.keep.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let report = export(host, &options)?;
    // A nightly cron line mails whatever it prints: off a terminal the warnings go to syslog
    // (and stderr with -v), the result lines to stderr with -v only.
    let terminal = std::io::stdout().is_terminal();
    match terminal {
        true => out.warn_all(&report.warnings),
        false => report.warnings.iter().for_each(|w| out.chosen(w)),
    }
    let line = format!(
        "exported {} ({} files from {})",
        report.bundle.display(),
        report.files,
        report.source.display()
    );
    syslog::log(Severity::Notice, &line);
    if out.json {
        out.json(&report)?;
        return Ok(Exit::Success.into());
    }
    out.line_or_detail(terminal, &line);
    for path in &report.removed {
        out.line_or_detail(terminal, &format!("removed old bundle {}", path.display()));
    }
    Ok(Exit::Success.into())
}
