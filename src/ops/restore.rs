//! `restore`: validate the whole archive, plan, save an undo archive, apply; under the
//! next-boot bank's lock so no backup reads a half-restored host.
//!
//! See the `restore` module for the security rules. The archive is copied once into a private
//! temp file; the planning read and the applying read both read that copy, so a rename over
//! the archive path or a rewrite in place between them changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::archive::{open_private_copy, read_archive_from, ArchiveLabel, ArchiveSummary};
use crate::bank::{lock_banks, next_boot, read_banks, Bank, BankLock};
use crate::host::Host;
use crate::ops::archive_path::archive_or_default;
use crate::ops::install::{esx_conf_uuid, IdentityFiles};
use crate::restore::undo::{check_undo_free, save_undo};
use crate::restore::{apply::stage, plan, Action, Placer};
use crate::root_lock::{lock_root, RootAccess};

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub archive: Option<PathBuf>,
    pub dry_run: bool,
    pub force: bool,
    pub undo: Option<PathBuf>,
    /// How long to wait for a backup holding the bank lock.
    pub wait: Duration,
}

/// The outcome of `restore`; the `--dry-run` JSON is exactly the three lists (docs/reference.md).
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    #[serde(skip)]
    pub archive: PathBuf,
    #[serde(skip)]
    pub dry_run: bool,
    pub create: Vec<String>,
    pub overwrite: Vec<String>,
    pub unchanged: Vec<String>,
    /// Files removed (restoring an undo archive of a restore that created them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// The undo archive written, if any file was overwritten (absent from the dry-run JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Restores the archive into `host.root` as `options` say.
pub fn restore(host: &Host, options: &RestoreOptions) -> Result<RestoreReport> {
    host.check_root()?;
    let archive = archive_or_default(host, options.archive.as_ref())?;
    let file = open_private_copy(&archive)?;
    let reread = file
        .try_clone()
        .with_context(|| format!("cannot open archive `{}`", archive.display()))?;
    let mut identity = IdentityFiles::default();
    let summary = read_archive_from(file, &archive, &host.limits, &mut identity)?;
    summary.ensure_safe()?;
    summary.ensure_fits(&host.root)?;
    let banks = read_banks(host);
    let next = next_boot(&banks).map(|name| banks.get(name));
    let mut warnings = Vec::new();
    check_build(&summary, next, options.force, &mut warnings)?;
    check_host_uuid(host, &archive, &identity, options.force, &mut warnings)?;
    // The one lock order: the root, then the next-boot bank (no backup reads a half-restored
    // host, whichever bank it writes).
    let access = match options.dry_run {
        true => RootAccess::Read,
        false => RootAccess::Write,
    };
    let _root = lock_root(host.run_dir()?, &host.root, access, options.wait)?;
    let _lock = match (next, options.dry_run) {
        (Some(bank), false) => lock_next(host, bank, options.wait)?,
        _ => Vec::new(),
    };
    let placer = Placer::open_batched(&host.root)?;
    if !options.dry_run {
        placer.clean_temps_beside(summary.files.iter().map(|f| f.path))?;
    }
    let plan = plan::plan(&placer, summary)?;
    let mut report = RestoreReport {
        archive: archive.clone(),
        dry_run: options.dry_run,
        create: plan.paths(Action::Create),
        overwrite: plan.paths(Action::Overwrite),
        unchanged: plan.paths(Action::Unchanged),
        remove: plan.remove.clone(),
        undo: None,
        warnings,
    };
    if options.dry_run || plan.is_noop() {
        return Ok(report);
    }
    check_undo_free(options.undo.as_deref())?;
    let label = ArchiveLabel {
        host: host.hostname(),
        build: next.and_then(Bank::build).unwrap_or_default().to_string(),
    };
    let staged = stage(&placer, &plan, reread, &archive, &host.limits)
        .context("restore aborted; nothing under the root was changed")?;
    let run_dir = host.run_dir()?;
    report.undo = save_undo(
        &placer,
        &plan,
        options.undo.as_deref(),
        &label,
        run_dir,
        super::clock::now(),
    )
    .context("restore aborted; nothing under the root was changed")?
    .map(|undo| shown(&undo));
    staged.commit(&plan.remove, report.undo.as_deref())?;
    Ok(report)
}

fn lock_next(host: &Host, bank: &Bank, wait: Duration) -> Result<Vec<BankLock>> {
    let run_dir = host.run_dir()?;
    lock_banks(run_dir, &[bank.path.as_path()], wait)
}

/// Refuses an archive from another build than the next-boot bank's, unless `force`; skipped
/// when the archive has no manifest (or an empty build) or no bank is readable.
fn check_build(
    summary: &ArchiveSummary,
    next: Option<&Bank>,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let Some(archived) = summary
        .manifest
        .as_ref()
        .map(|m| m.build.as_str())
        .filter(|b| !b.is_empty())
    else {
        return Ok(());
    };
    let Some((bank, build)) = next.and_then(|bank| bank.build().map(|b| (bank, b))) else {
        return Ok(());
    };
    if archived == build {
        return Ok(());
    }
    let what = format!(
        "archive `{}` was saved on build {archived}, but bank `{}` boots build {build}",
        summary.archive.display(),
        bank.path.display()
    );
    if force {
        warnings.push(format!("{what}; restoring anyway (--force)"));
        return Ok(());
    }
    bail!("{what}; nothing was written; pass --force to restore it anyway")
}

/// Refuses, unless `force`, an archive whose `etc/vmware/esx.conf` names another host UUID
/// than the target's own (restoring it gives the target another host's identity); skipped
/// when either has none.
fn check_host_uuid(
    host: &Host,
    archive: &Path,
    identity: &IdentityFiles,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let (Some(theirs), Some(ours)) = (identity.esx_conf_uuid(), esx_conf_uuid(host)) else {
        return Ok(());
    };
    if theirs == ours {
        return Ok(());
    }
    let what = format!(
        "archive `{}` comes from host UUID `{theirs}`, but the target `{}` is host `{ours}`",
        archive.display(),
        host.root.display()
    );
    if force {
        warnings.push(format!("{what}; restoring anyway (--force)"));
        return Ok(());
    }
    bail!("{what}; nothing was written; pass --force to give this host that identity")
}

/// The path printed for an archive: absolute where it can be made so.
pub fn shown(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
