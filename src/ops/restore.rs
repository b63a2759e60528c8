//! `restore`: validate the whole archive, plan, save an undo archive, apply; under the
//! next-boot bank's lock so no backup reads a half-restored host.
//!
//! See the `restore` module for the security rules. The archive is copied once into a private
//! temp file; the planning read and the applying read both read that copy, so a rename over
//! the archive path or a rewrite in place between them changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::archive::{open_private_copy, read_archive_from, ArchiveLabel, ArchiveSummary};
use crate::bank::{next_boot, read_banks, Bank};
use crate::host::Host;
use crate::lock::{lock_banks, BankLock};
use crate::lock::{lock_root, RootAccess};
use crate::ops::archive_path::{archive_or_default, shown};
use crate::ops::checks::{other_release, Checks};
use crate::ops::identity::{esx_conf_uuid, IdentityFiles};
use crate::ops::release::{release_of_build, version_triple};
use crate::ops::restored;
use crate::restore::plan::{self, PlannedFiles};
use crate::restore::undo::{check_undo_free, save_undo};
use crate::restore::{apply::stage, Action, Placer};

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
    /// The default undo path is on a RAM filesystem: lost at the next reboot.
    pub undo_on_ram: bool,
    /// Restored files the next backup would not persist (each also a warning).
    pub not_persisted: Vec<String>,
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
        match self.dry_run {
            true => out.skip_field("not_persisted")?,
            false => out.serialize_field("not_persisted", &self.not_persisted)?,
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
    let stale = summary.stale_manifest_warning().into_iter().collect();
    let mut checks = Checks::new(options.force, "restoring", stale);
    // An undo archive goes back onto its root whatever identity the restore gave it.
    if !summary.manifest.as_ref().is_some_and(|m| m.undo) {
        check_build(&summary, next, &mut checks);
        check_host_uuid(host, &identity, &mut checks);
    }
    let warnings = checks.finish(&archive, "nothing was written")?;
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
        undo_on_ram: false,
        not_persisted: Vec::new(),
        warnings,
    };
    if options.dry_run || plan.is_noop() {
        return Ok(report(plan, None));
    }
    check_undo_free(options.undo.as_deref())?;
    let label = ArchiveLabel {
        host: host.hostname()?,
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
        crate::clock::now(),
    )
    .context("restore aborted; nothing under the root was changed")?
    .map(|undo| shown(&undo));
    staged.commit(&plan.remove, undo.as_deref())?;
    let undo_on_ram = options.undo.is_none()
        && (undo.as_deref())
            .and_then(Path::parent)
            .is_some_and(restored::on_ram);
    let mut report = report(plan, undo);
    report.undo_on_ram = undo_on_ram;
    let written = [Action::Create, Action::Overwrite]
        .map(|a| report.paths(a))
        .concat();
    let dropped: Vec<String> = restored::not_persisted(host, &written)?
        .into_iter()
        .map(str::to_string)
        .collect();
    (report.warnings).extend(dropped.iter().map(|p| restored::not_persisted_warning(p)));
    report.not_persisted = dropped;
    Ok(report)
}

fn lock_next(host: &Host, bank: &Bank, wait: Duration) -> Result<Vec<BankLock>> {
    let run_dir = host.run_dir()?;
    lock_banks(run_dir, &[bank.path.as_path()], wait)
}

/// An archive from another release than the next-boot bank's is never restored (a bundle's
/// `RELEASELEVEL` or the manifest's build, by version); another build of the release needs
/// `--force`. Skipped when the archive records neither or no bank is readable.
fn check_build(summary: &ArchiveSummary, next: Option<&Bank>, checks: &mut Checks) {
    let Some((bank, build)) = next.and_then(|bank| bank.build().map(|b| (bank, b))) else {
        return;
    };
    let archived = (summary.manifest.as_ref())
        .map(|m| m.build.as_str())
        .filter(|b| !b.is_empty());
    let release = summary
        .bundle
        .as_ref()
        .map(|b| b.manifest.release_level.as_str());
    let theirs = release.or(archived).and_then(version_triple);
    let ours = format!("build {build} (bank `{}`)", bank.path.display());
    if theirs.is_some() && theirs != version_triple(build) {
        let found = match release {
            Some(level) => format!("`{level}`"),
            None => release_of_build(archived.unwrap_or_default()),
        };
        return checks.never(other_release(&found, archived, &ours, "restored"));
    }
    if let Some(archived) = archived.filter(|archived| *archived != build) {
        checks.forceable(format!(
            "it was saved on build {archived}, but this host runs {ours}"
        ));
    }
}

/// Refuses, unless `force`, an archive whose `etc/vmware/esx.conf` names another host UUID
/// than the target's own (restoring it gives the target another host's identity); skipped
/// when either has none.
fn check_host_uuid(host: &Host, identity: &IdentityFiles, checks: &mut Checks) {
    let (Some(theirs), Some(ours)) = (identity.esx_conf_uuid(), esx_conf_uuid(host)) else {
        return;
    };
    if theirs != ours {
        checks.forceable(format!(
            "it comes from host UUID `{theirs}`, but the target `{}` is host `{ours}` \
             (restoring it gives this host that identity)",
            host.root.display()
        ));
    }
}
