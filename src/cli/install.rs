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
restore does; and boot.cfg is made to list state.tgz. Every check runs first: a refusal lists \
each failed check and the flag that overrides it. Nothing changes on the running host: the \
files take effect at the next boot. Until then the install is pending (a marker in the run \
directory, which a reboot clears): backup (hourly, at shutdown, by hand) leaves that bank's \
archive alone, and backup --force overwrites it. The archive it replaced is kept as \
state-replaced.tgz in the bank (its path is printed; install it to put it back). With \
--reboot the host reboots after a successful install, as firmwareConfig.sh --restore does \
(`reboot` from PATH; refused before anything is written when --root is not /).",
    after_help = "Examples:\n  statectl install configBundle-esx01-20250101T120000Z.tgz\n  \
statectl install --force configBundle-oldhost-20250101T120000Z.tgz  # from another host\n  \
statectl install --reboot /vmfs/volumes/ds1/state.tgz\n  \
statectl install /bootbank/state-replaced.tgz  # put back what the last install replaced"
)]
pub struct InstallArgs {
    /// The state.tgz or configBundle-*.tgz to install
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Install an archive from another host UUID, with no files or stray members (never overrides a release mismatch)
    #[arg(long)]
    pub force: bool,
    /// Reboot the host after a successful install (root / only), as firmwareConfig.sh --restore does
    #[arg(long)]
    pub reboot: bool,
}

pub fn run(host: &Host, out: &Output, args: &InstallArgs) -> Result<ExitCode> {
    let options = InstallOptions {
        archive: args.archive.clone(),
        force: args.force,
        reboot: args.reboot,
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
    } else {
        out.line(&summary);
        if let Some(replaced) = &report.replaced {
            out.line(&format!(
                "the archive it replaced is kept as {} (statectl install {0} puts it back)",
                replaced.display()
            ));
        }
        out.line(&format!(
            "takes effect at the next boot from {} (build {}); until then backup leaves that \
             bank alone (backup --force overwrites it)",
            report.bank.display(),
            report.build
        ));
    }
    if args.reboot {
        reboot()?;
    }
    Ok(Exit::Success.into())
}

/// Runs `reboot` from PATH, as `firmwareConfig.sh --restore` does after its restore.
fn reboot() -> Result<()> {
    syslog::log(Severity::Notice, "rebooting after the install (--reboot)");
    let status = std::process::Command::new("reboot")
        .stdin(std::process::Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => anyhow::bail!(
            "the archive is installed, but `reboot` failed ({status}); reboot the host yourself"
        ),
        Err(err) => anyhow::bail!(
            "the archive is installed, but `reboot` could not be run ({err}); reboot the host \
             yourself"
        ),
    }
}
