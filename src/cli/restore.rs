//! `statectl restore`: put an archive's files back onto a host, safely, with an undo archive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::Output;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::archive_path::shown;
use crate::ops::restore::{restore, RestoreOptions, RestoreReport};
use crate::restore::Action;
use crate::syslog::{self, Severity};

/// Write an archive's files into the root (a new or rebuilt host), with an undo archive
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Writes the files of ARCHIVE (a state.tgz or a configBundle-*.tgz; default: \
the next-boot bank's state.tgz) into --root. The whole archive is validated first: an absolute name, a `..` component, a link, device \
or fifo, a setuid/setgid bit, a duplicate path or a bad name refuses it before anything is \
written. Every file is then planned as create, overwrite or unchanged (content, mode, owner and \
mtime compared); a directory symlink among a destination's parents (ESXi's etc/sfcb/repository) \
is followed, resolved within the root (an absolute target is relative to the root, `..` stops \
there); a link whose target is missing in the root, a non-directory among the parents, or a \
destination that is a directory, symlink or special file refuses the restore. The files that will be overwritten are saved first \
into an undo archive (0600; --undo FILE, else <root>/var/lib/statectl/undo-<UTC stamp>.tgz), whose \
path is printed; it also lists the files the restore creates, so `statectl restore UNDO` brings the overwritten files back and removes the created ones. An existing undo file is never overwritten: --undo naming one refuses the restore (exit 1) before anything is written. Each file is written atomically with \
all mode bits (sticky bit included), numeric owner and mtime; missing directories are created \
0755. Every check runs first and a refusal lists each failed one with its override: an archive \
of another release than the next-boot bank's is never restored (the message names the build to \
install first); another build of the release, or an etc/vmware/esx.conf naming another \
/system/uuid than the target's, needs --force. An undo archive restores onto its root without \
--force whatever identity the restore gave it. A restored file the next backup would not persist \
(no .# branch, not included) is a warning and counted; a default undo path on a RAM filesystem is \
said to be lost at reboot. \
Holds the root lock, then the bank lock, so no backup reads the root halfway \
through (waits up to --wait seconds for a running backup; exit 4 after that). Temp files a killed \
restore left beside the files it writes are removed, and running it again completes it.",
    after_help = "Examples:\n  statectl restore --dry-run          # what would be created, \
overwritten, unchanged\n  statectl restore old-host-state.tgz # bring an old host's config onto \
this one\n  statectl restore /var/lib/statectl/undo-20250101T120000Z.tgz  # undo that"
)]
pub struct RestoreArgs {
    /// The archive to restore [default: the next-boot bank's state.tgz]
    #[arg(value_name = "ARCHIVE")]
    pub archive: Option<PathBuf>,
    /// Print the plan (create, overwrite, unchanged); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Restore even if the archive was saved on another build of the release or host UUID (never another release)
    #[arg(long)]
    pub force: bool,
    /// Write the undo archive here [default: <root>/var/lib/statectl/undo-<UTC stamp>.tgz]
    #[arg(long, value_name = "FILE")]
    pub undo: Option<PathBuf>,
    /// Seconds to wait for a backup holding the bank lock
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

pub fn run(host: &Host, out: &Output, args: &RestoreArgs) -> Result<ExitCode> {
    let options = RestoreOptions {
        archive: args.archive.clone(),
        dry_run: args.dry_run,
        force: args.force,
        undo: args.undo.clone(),
        wait: Duration::from_secs(args.wait),
    };
    let report = restore(host, &options)?;
    out.warn_all(&report.warnings);
    if !report.dry_run {
        log_restored(&report);
    }
    if out.json {
        out.json(&report)?;
        return Ok(Exit::Success.into());
    }
    let verb = if report.dry_run {
        "dry run: would restore"
    } else {
        "restored"
    };
    let dropped = match report.not_persisted.len() {
        0 => String::new(),
        n => format!(" ({n} not persisted by the next backup, see the warnings)"),
    };
    out.line(&format!(
        "{verb} {}: {} created, {} overwritten, {} unchanged{dropped}",
        shown(&report.archive).display(),
        report.count(Action::Create),
        report.count(Action::Overwrite),
        report.count(Action::Unchanged)
    ));
    if !report.remove.is_empty() {
        out.line(&format!(
            "removed {} created by the undone restore",
            report.remove.len()
        ));
    }
    if report.dry_run || out.verbose > 0 {
        let removed = report.remove.iter().map(String::as_str).collect();
        for (label, paths) in [
            ("create", report.paths(Action::Create)),
            ("overwrite", report.paths(Action::Overwrite)),
            ("unchanged", report.paths(Action::Unchanged)),
            ("remove", removed),
        ] {
            for path in paths {
                out.line_or_detail(report.dry_run, &format!("  {label:<9} {path}"));
            }
        }
    }
    if let Some(undo) = &report.undo {
        let ram = match report.undo_on_ram {
            true => "; on a RAM filesystem, lost at reboot: name a datastore with --undo",
            false => "",
        };
        out.line(&format!(
            "undo archive: {} (statectl restore {0} puts the overwritten files back and \
             removes the created ones{ram})",
            shown(undo).display()
        ));
    }
    Ok(Exit::Success.into())
}

fn log_restored(report: &RestoreReport) {
    let undo = report
        .undo
        .as_ref()
        .map(|u| format!("; undo archive {}", shown(u).display()))
        .unwrap_or_default();
    syslog::log(
        Severity::Notice,
        &format!(
            "restored {} ({} created, {} overwritten, {} unchanged{undo})",
            shown(&report.archive).display(),
            report.count(Action::Create),
            report.count(Action::Overwrite),
            report.count(Action::Unchanged)
        ),
    );
}
