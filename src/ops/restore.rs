//! `restore`: validate the whole archive, plan, save an undo archive, apply; under the
//! next-boot bank's lock so no backup reads a half-restored host.
//!
//! See the `restore` module for the security rules. The archive is copied once into a private
//! temp file; the planning read and the applying read both read that copy, so a rename over
//! the archive path or a rewrite in place between them changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::archive::{open_private_copy, read_archive_from, ArchiveLabel, ArchiveSummary};
use crate::bank::{lock_banks, next_boot, read_banks, Bank, BankLock};
use crate::host::Host;
use crate::ops::archive_path::archive_or_default;
use crate::ops::install::{esx_conf_uuid, IdentityFiles};
use crate::restore::plan::{self, PlannedFiles};
use crate::restore::undo::{check_undo_free, save_undo};
use crate::restore::{apply::stage, Action, Placer};
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

/// The outcome of `restore`; the `--dry-run` JSON is exactly the three lists (docs/reference.md):
/// `create`, `overwrite`, `unchanged`, each sorted, then `remove` and `undo` when there are any.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub archive: PathBuf,
    pub dry_run: bool,
    /// Every file of the archive and what the restore did (or would do) with it: the plan
    /// itself, not copies of its paths (100,000 of them are megabytes).
    pub files: PlannedFiles,
    /// Files removed (restoring an undo archive of a restore that created them).
    pub remove: Vec<String>,
    /// The undo archive written, if any file was overwritten (absent from the dry-run JSON).
    pub undo: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl RestoreReport {
    /// How many files have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.files.count(action)
    }

    /// The paths with `action`, sorted.
    pub fn paths(&self, action: Action) -> Vec<&str> {
        self.files.sorted(action)
    }
}

impl Serialize for RestoreReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("RestoreReport", 5)?;
        out.serialize_field("create", &self.paths(Action::Create))?;
        out.serialize_field("overwrite", &self.paths(Action::Overwrite))?;
        out.serialize_field("unchanged", &self.paths(Action::Unchanged))?;
        match self.remove.is_empty() {
            true => out.skip_field("remove")?,
            false => out.serialize_field("remove", &self.remove)?,
        }
        match &self.undo {
            Some(undo) => out.serialize_field("undo", undo)?,
            None => out.skip_field("undo")?,
        }
        out.end()
    }
}

/// Restores the archive into `host.root` as `options` say.
pub fn restore(host: &Host, options: &RestoreOptions) -> Result<RestoreReport> {
    host.check_root()?;
    crate::restore::keep_big_buffers_mapped();
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
    let mut warnings: Vec<String> = summary.stale_manifest_warning().into_iter().collect();
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
    let report = |plan: plan::Plan, undo: Option<PathBuf>| RestoreReport {
        archive: archive.clone(),
        dry_run: options.dry_run,
        files: plan.files,
        remove: plan.remove,
        undo,
        warnings,
    };
    if options.dry_run || plan.is_noop() {
        return Ok(report(plan, None));
    }
    check_undo_free(options.undo.as_deref())?;
    let label = ArchiveLabel {
        host: host.hostname(),
        build: next.and_then(Bank::build).unwrap_or_default().to_string(),
    };
    let staged = stage(&placer, &plan, reread, &archive, &host.limits)
        .context("restore aborted; nothing under the root was changed")?;
    let run_dir = host.run_dir()?;
    let undo = save_undo(
        &placer,
        &plan,
        options.undo.as_deref(),
        &label,
        run_dir,
        super::clock::now(),
    )
    .context("restore aborted; nothing under the root was changed")?
    .map(|undo| shown(&undo));
    staged.commit(&plan.remove, undo.as_deref())?;
    Ok(report(plan, undo))
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
