//! `statectl install`: put a state.tgz or an ESXi configBundle into the next-boot bank.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::Output;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::install::{install, InstallOptions};
use crate::syslog::{self, Severity};

/// Install a state.tgz or configBundle-*.tgz into the next-boot bank for the next boot
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "The firmware-restore path (ESXi's firmwareConfig.sh --restore): ARCHIVE is \
a state.tgz or a configBundle-*.tgz (Manifest.txt + state.tgz; a bundle without Manifest.txt is \
invalid). It is verified completely; an archive from another release is refused always, even \
with --force (a bundle's RELEASELEVEL must equal this host's `vmware -l` output, as \
firmwareConfig.sh compares it; where `vmware` is missing, its version must match boot.cfg's \
build, with a warning that the update level was not checked; a recorded statectl build must be \
of the same version, another build of it is a warning); an archive from another host UUID (a \
bundle's UUID; for a state.tgz, /system/uuid in its etc/vmware/esx.conf, else its \
etc/machine-id; compared with this host's), one with no files, or one with members outside the \
scanned and included paths (a `pack DIR/etc`) is refused unless --force. Then the archive is \
copied atomically, read back and checked, as state.tgz into the next-boot bank; a bundle's \
KERNELOPTS becomes boot.cfg's kernelopt= and its USEROPTS the bank's useropts.gz, as the real \
restore does; and boot.cfg is made to list state.tgz. Nothing changes on the running host: the files take effect at the next boot. Reboot \
without a shutdown backup (reboot -f), or that backup (and the hourly one) saves the running \
state over the installed one.",
    after_help = "Examples:\n  statectl install configBundle-esx01-20250101T120000Z.tgz\n  \
statectl install --force configBundle-oldhost-20250101T120000Z.tgz  # from another host\n  \
statectl install /vmfs/volumes/ds1/state.tgz && reboot -f"
)]
pub struct InstallArgs {
    /// The state.tgz or configBundle-*.tgz to install
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Install an archive from another host UUID, with no files or stray members (never overrides a release mismatch)
    #[arg(long)]
    pub force: bool,
}

pub fn run(host: &Host, out: &Output, args: &InstallArgs) -> Result<ExitCode> {
    let options = InstallOptions {
        archive: args.archive.clone(),
        force: args.force,
    };
    let report = install(host, &options)?;
    out.warn_all(&report.warnings);
    let summary = format!(
        "installed {} ({}, {} files) as {}",
        report.source.display(),
        report.kind,
        report.files,
        report.archive.display()
    );
    syslog::log(Severity::Notice, &summary);
    if out.json {
        out.json(&report)?;
        return Ok(Exit::Success.into());
    }
    out.line(&summary);
    out.line(&format!(
        "takes effect at the next boot from {} (build {}); reboot without a shutdown backup \
         (reboot -f), or a backup saves the running state over it",
        report.bank.display(),
        report.build
    ));
    Ok(Exit::Success.into())
}
