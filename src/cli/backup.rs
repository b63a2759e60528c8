//! `statectl backup`: save the flagged files into `state.tgz` when something changed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Output, Report};
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::backup::{backup, Action, BackupOptions, BackupReport};
use crate::ops::fleet::copy::{backup_with_copy, copy_options, CopyReport};
use crate::syslog::{self, Severity};

/// Save the flagged files into state.tgz on the bootbank (and a staged upgrade's bank), if anything changed
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Selects the persisted files (ESXi's rule: a file under etc with a .# branch, \
directory symlinks followed within the root; with select = \"sticky\" also T-flagged files; plus \
the config's include/required, minus exclude), compares them with the archive in the target bank, and writes a \
new state.tgz only if a file was added, changed (content, mode, owner, mtime) or removed. An \
empty selection never replaces a non-empty archive (exit 1; --force writes it). The \
archive is replaced atomically (temp file, fsync, rename, fsync of the directory); boot.cfg is \
made to list state.tgz. The target is --bank DIR, else the bootbank (the running system); when the \
altbootbank boots next with the same or a newer build (a staged upgrade, or a manual switch), it \
is written too, as its own archive: its manifest records its own build and it leaves out the paths \
listed in <root>/var/run/configblacklist. An altbootbank with an older build (a rollback target) \
is never overwritten (a warning; --bank writes it on purpose). Each bank written is also locked \
with ESXi's <root>/tmp/<bank>.lck. Silent on success unless -v, a terminal, or --json. An \
encrypted archive (ESXi 7.0 U2+ local.tgz.ve) is replaced by one encrypted again with its key store \
and a fresh IV; a plaintext archive never replaces an encrypted one, not even with --force, unless \
--allow-plaintext (logged to syslog); a TPM-sealed one is never replaced without it. With \
--copy-to DIR (or [copy] to in the config), a bundle of the new state (the export format; an \
encrypted host's stays encrypted) also goes into DIR/<host id>/ (the host UUID, else its name) \
after every backup that wrote, or that could not write the bank; a run that changed nothing \
writes a copy only when the newest one there is missing or holds another state. DIR is never \
created; the newest --keep N (default 24) copies and the newest of each of the last 30 UTC days \
are kept. A failed copy is exit 1 naming DIR (the bank stays written); a failed bank with a \
good copy is exit 1 naming the bank and the copy.",
    after_help = "Examples:\n  statectl backup                 # what cron runs hourly\n  \
statectl backup --dry-run --json # what would be saved\n  statectl backup --shutdown      # at \
shutdown: wait at most 60 s\n  \
statectl backup --copy-to /vmfs/volumes/shared/statectl   # and a copy on the datastore"
)]
pub struct BackupArgs {
    /// Write even if nothing changed
    #[arg(long)]
    pub force: bool,
    /// Show what would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Shutdown mode: never wait more than 60 s for the lock (writes only what changed)
    #[arg(long)]
    pub shutdown: bool,
    /// Write into this bank directory only
    #[arg(long, value_name = "DIR")]
    pub bank: Option<PathBuf>,
    /// Seconds to wait for another run holding the bank lock (and for ConfigStore's write lock)
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
    /// Let a plaintext archive replace an encrypted one (ESXi 7.0 U2+ local.tgz.ve); logged
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Also keep a copy (a bundle) in DIR/<host id>/ [default: the config's [copy] to]
    #[arg(long, value_name = "DIR")]
    pub copy_to: Option<PathBuf>,
    /// Copies kept in DIR/<host id>/ besides one a day [default: [copy] keep, 24]
    #[arg(long, value_name = "N", requires = "copy_to",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
}

impl BackupArgs {
    pub fn options(&self) -> BackupOptions {
        BackupOptions {
            force: self.force,
            dry_run: self.dry_run,
            shutdown: self.shutdown,
            bank: self.bank.clone(),
            wait: Duration::from_secs(self.wait),
            allow_plaintext: self.allow_plaintext,
        }
    }
}

/// The JSON form: the report (and the copy); its warnings are every warning, the selection's
/// notes included.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a BackupReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    copy: Option<Option<&'a PathBuf>>,
}

impl Report for JsonReport<'_> {}

pub fn run(host: &Host, out: &Output, args: &BackupArgs) -> Result<ExitCode> {
    let keep = args.keep.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let (report, copy) = match copy_options(host, args.copy_to.clone(), keep)? {
        Some(copy) => backup_with_copy(host, &args.options(), &copy)?,
        None => (backup(host, &args.options())?, None),
    };
    out.warn_all(&report.warnings);
    if let Some(copy) = &copy {
        out.warn_all(&copy.warnings);
        log_copy(copy);
    }
    report.notes.iter().for_each(|note| out.note(note));
    report.chosen.iter().for_each(|chosen| out.chosen(chosen));
    if report.action == Action::Written {
        log_written(&report);
    }
    if out.json {
        let warnings: Vec<String> = report
            .warnings
            .iter()
            .chain(&report.notes)
            .chain(copy.iter().flat_map(|copy| &copy.warnings))
            .chain(&report.chosen)
            .cloned()
            .collect();
        let document = JsonReport {
            report: &report,
            copy: copy.as_ref().map(|copy| copy.copy.as_ref()),
        };
        out.json_with(&document, &warnings)?;
        return Ok(Exit::Success.into());
    }
    // A terminal or a dry run gets the result on stdout; `-v` alone (cron) gets it on stderr.
    let on_stdout = std::io::stdout().is_terminal() || report.action == Action::DryRun;
    if (on_stdout || out.verbose > 0) && !out.quiet {
        let counts = format!(
            "{} added, {} modified, {} removed",
            report.added.len(),
            report.modified.len(),
            report.removed.len()
        );
        let line = match report.action {
            Action::Written => format!(
                "wrote {} ({} files, {} bytes; {counts})",
                report
                    .banks
                    .iter()
                    .map(|b| b.join(crate::archive::STATE_NAME).display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                report.files,
                report.bytes
            ),
            Action::Unchanged => format!("unchanged: {} is up to date", report.archive.display()),
            Action::DryRun => format!(
                "dry run: would write {} ({counts})",
                report.archive.display()
            ),
        };
        out.line_or_detail(on_stdout, &line);
        if let Some(path) = copy
            .as_ref()
            .filter(|c| c.written)
            .and_then(|c| c.copy.as_ref())
        {
            out.line_or_detail(on_stdout, &format!("copied to {}", path.display()));
        }
        if report.action == Action::DryRun || out.verbose > 0 {
            let (added, modified, removed) = (&report.added, &report.modified, &report.removed);
            let paths_on_stdout = report.action == Action::DryRun;
            super::status::print_paths(out, paths_on_stdout, added, modified, removed);
        }
    }
    Ok(Exit::Success.into())
}

/// A syslog notice for a copy written.
fn log_copy(copy: &CopyReport) {
    if let Some(path) = copy.copy.as_ref().filter(|_| copy.written) {
        syslog::log(Severity::Notice, &format!("copied to {}", path.display()));
    }
}

/// One syslog notice per archive written (one per bank).
fn log_written(report: &BackupReport) {
    let sha = report.sha256.as_deref().unwrap_or_default();
    for bank in &report.banks {
        syslog::log(
            Severity::Notice,
            &format!(
                "wrote {} ({} files, {} bytes, sha256 {}; {} added, {} modified, {} removed)",
                bank.join(crate::archive::STATE_NAME).display(),
                report.files,
                report.bytes,
                &sha[..sha.len().min(12)],
                report.added.len(),
                report.modified.len(),
                report.removed.len()
            ),
        );
    }
}
