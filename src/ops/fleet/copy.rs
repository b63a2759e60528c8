//! Off-host copies: after `backup`, a bundle of the new state goes into `DIR/<host id>/`.
//!
//! The bank is written first; the copy never holds it up and never stops it. A copy is written
//! when the backup wrote an archive, when it could not write the bank (then the new state is
//! written into a private temp directory inside the host's copy directory by the same backup
//! code, the bank's archive and `boot.cfg` seeded there first so an encrypted host stays
//! encrypted, and bundled from there), and when the newest copy is missing or holds another
//! `state.tgz` (a copy missed while the datastore was away). Bundles are written by export's
//! one bundle writer (temp file in the host's directory, fsync, rename, never over a file).
//! Only this host's directory is written: DIR itself is never created, nothing outside
//! `DIR/<host id>/` is removed or renamed, and no lock is taken on DIR (an NFS datastore
//! offers none to trust; each host writes its own directory only).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::store::{beyond_retention, check_store, copies_in, host_id};
use crate::archive::bundle::read_bundle;
use crate::archive::{open_archive, read_archive_from, CheckOnly, STATE_NAME};
use crate::bank::{Bank, BankName};
use crate::detect::cache::cache_path;
use crate::error::Error;
use crate::fs::atomic;
use crate::host::Host;
use crate::lock::bank::lock_path;
use crate::lock::lock_banks;
use crate::ops::archive_path::shown;
use crate::ops::backup::{backup, Action, BackupOptions, BackupReport};
use crate::ops::export::write_bundle_in;

/// Where copies go and how many are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub to: PathBuf,
    pub keep: usize,
    pub keep_daily: usize,
}

/// What the copy step did.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The newest copy of this host (written by this run or already current); `None` when
    /// the bank holds no archive to copy.
    pub copy: Option<PathBuf>,
    pub written: bool,
    /// Older copies removed by retention.
    pub removed: Vec<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The copy settings of this run: `to` (`--copy-to`) else the config's `[copy] to`; `keep`
/// (`--keep`) else the config's; `None` when neither names a directory.
pub fn copy_options(
    host: &Host,
    to: Option<PathBuf>,
    keep: Option<usize>,
) -> Result<Option<CopyOptions>> {
    let config = host.selection()?.copy;
    Ok(to.or(config.to).map(|to| CopyOptions {
        to,
        keep: keep.unwrap_or(config.keep),
        keep_daily: config.keep_daily,
    }))
}

/// Runs `backup` and then the copy step; a failed bank or copy is an error saying what was
/// written and where.
pub fn backup_with_copy(
    host: &Host,
    options: &BackupOptions,
    copy: &CopyOptions,
) -> Result<(BackupReport, Option<CopyReport>)> {
    let report = match backup(host, options) {
        Ok(report) => report,
        Err(err) if is_lock_busy(&err) || options.dry_run => return Err(err),
        Err(bank_err) => return Err(copy_after_failed_bank(host, options, copy, bank_err)),
    };
    if report.action == Action::DryRun {
        return Ok((report, None));
    }
    match copy_state(host, &report, copy) {
        Ok(copied) => Ok((report, Some(copied))),
        Err(err) => Err(err.context(format!(
            "the bank's archive `{}` is {}, but its copy into `{}` failed; the next backup \
             writes the copy once the directory is back",
            report.archive.display(),
            if report.action == Action::Written {
                "written"
            } else {
                "current"
            },
            copy.to.display()
        ))),
    }
}

fn is_lock_busy(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::LockBusy { .. })))
}

/// The copy after a backup that wrote or kept `report.archive`: written unless the newest copy
/// already holds that very `state.tgz`.
fn copy_state(host: &Host, report: &BackupReport, copy: &CopyOptions) -> Result<CopyReport> {
    let dir = host_dir(&copy.to, host)?;
    let mut warnings = Vec::new();
    atomic::remove_stale_temps(&dir)
        .with_context(|| format!("cannot clean copy directory `{}`", dir.display()))?;
    if report.sha256.is_none() {
        return Ok(CopyReport {
            copy: None,
            written: false,
            removed: Vec::new(),
            warnings,
        });
    }
    if report.action == Action::Unchanged {
        if let Some(current) = current_copy(host, &dir, report.sha256.as_deref(), &mut warnings) {
            // Finishes the retention of a run killed after its rename (a no-op otherwise).
            let removed = prune(&dir, &current, copy)?;
            return Ok(CopyReport {
                copy: Some(shown(&current)),
                written: false,
                removed,
                warnings,
            });
        }
    }
    let bank_dir = report.archive.parent().unwrap_or(Path::new("."));
    let run_dir = host.run_dir()?.to_path_buf();
    let _lock = lock_banks(&run_dir, &[bank_dir], crate::lock::DEFAULT_WAIT)?;
    write_copy(host, bank_dir, &report.archive, &dir, copy, warnings)
}

/// The newest copy in `dir` when it holds the `state.tgz` of digest `sha256`; an unreadable
/// newest copy is a warning and counts as missing.
fn current_copy(
    host: &Host,
    dir: &Path,
    sha256: Option<&str>,
    warnings: &mut Vec<String>,
) -> Option<PathBuf> {
    let newest = copies_in(dir).ok()?.pop()?;
    match read_bundle(&newest.path, &host.limits, &mut CheckOnly) {
        Ok(read) if Some(read.state.sha256.as_str()) == sha256 => Some(newest.path),
        Ok(_) => None,
        Err(err) => {
            warnings.push(format!(
                "the newest copy `{}` cannot be read ({err:#}); writing a new one",
                newest.path.display()
            ));
            None
        }
    }
}

/// Verifies the `state.tgz` at `state` (of the bank `bank_dir`), bundles it into `dir` and
/// applies retention.
fn write_copy(
    host: &Host,
    bank_dir: &Path,
    state: &Path,
    dir: &Path,
    copy: &CopyOptions,
    mut warnings: Vec<String>,
) -> Result<CopyReport> {
    let mut file = open_archive(state)?;
    let reader = file
        .try_clone()
        .with_context(|| format!("cannot open archive `{}`", state.display()))?;
    read_archive_from(reader, state, &host.limits, &mut CheckOnly)?.ensure_safe()?;
    let bank = bank_of(host, bank_dir);
    let build = bank.build().unwrap_or_default().to_string();
    let (target, manifest_warnings) = write_bundle_in(host, &bank, &build, &mut file, state, dir)?;
    warnings.extend(manifest_warnings);
    let removed = prune(dir, &target, copy)?;
    Ok(CopyReport {
        copy: Some(shown(&target)),
        written: true,
        removed,
        warnings,
    })
}

/// The bank at `path` as read from its `boot.cfg` (its role by path, for messages only).
fn bank_of(host: &Host, path: &Path) -> Bank {
    let name = if path == host.altbootbank {
        BankName::Altbootbank
    } else {
        BankName::Bootbank
    };
    Bank::read(name, path)
}

/// Removes this host's copies beyond retention as of the newest copy's time (the run that
/// wrote it), never `newest`.
fn prune(dir: &Path, newest: &Path, copy: &CopyOptions) -> Result<Vec<PathBuf>> {
    let copies = copies_in(dir)?;
    let Some(now) = copies.iter().find(|c| c.path == newest).map(|c| c.time) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for old in beyond_retention(&copies, copy.keep, copy.keep_daily, now) {
        if old.path == newest {
            continue;
        }
        match std::fs::remove_file(&old.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err)
                    .with_context(|| format!("cannot remove old copy `{}`", old.path.display()))
            }
            _ => removed.push(shown(&old.path)),
        }
    }
    Ok(removed)
}

/// `DIR/<host id>/`, created (0700) when missing; DIR itself must exist.
fn host_dir(store: &Path, host: &Host) -> Result<PathBuf> {
    check_store(store)?;
    let dir = store.join(host_id(host)?);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(err)
                .with_context(|| format!("cannot create copy directory `{}`", dir.display()))
        }
        _ => {}
    }
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        _ => anyhow::bail!(
            "`{}` is not a directory; remove it so statectl can keep this host's copies there",
            dir.display()
        ),
    }
}

/// The bank could not be written: the new state is written into a temp directory in this
/// host's copy directory and bundled from there. The error says both outcomes.
fn copy_after_failed_bank(
    host: &Host,
    options: &BackupOptions,
    copy: &CopyOptions,
    bank_err: anyhow::Error,
) -> anyhow::Error {
    match spool_and_copy(host, options, copy) {
        Ok(CopyReport {
            copy: Some(path), ..
        }) => bank_err.context(format!(
            "the bank was not written, but a copy of the new state is in `{}`",
            path.display()
        )),
        Ok(_) => bank_err,
        Err(copy_err) => bank_err.context(format!(
            "the bank was not written, and its copy into `{}` failed too ({copy_err:#})",
            copy.to.display()
        )),
    }
}

fn spool_and_copy(host: &Host, options: &BackupOptions, copy: &CopyOptions) -> Result<CopyReport> {
    let dir = host_dir(&copy.to, host)?;
    atomic::remove_stale_temps(&dir)
        .with_context(|| format!("cannot clean copy directory `{}`", dir.display()))?;
    let spool = atomic::temp_dir_in(&dir)?;
    let bank = options
        .bank
        .clone()
        .unwrap_or_else(|| host.bootbank.clone());
    seed_spool(&bank, spool.path())?;
    let run_dir = host.run_dir()?.to_path_buf();
    // The spool's stat cache and lock file are of no later use (its name is never seen again).
    let cache = cache_path(&run_dir, &host.root, spool.path());
    let lock = spool
        .path()
        .canonicalize()
        .map(|canonical| lock_path(&run_dir, &canonical));
    let spooled = backup(
        host,
        &BackupOptions {
            bank: Some(spool.path().to_path_buf()),
            dry_run: false,
            ..options.clone()
        },
    );
    let _ = std::fs::remove_file(&cache);
    if let Ok(lock) = lock {
        let _ = std::fs::remove_file(lock);
    }
    let report = spooled?;
    let state = spool.path().join(STATE_NAME);
    let warnings = report.warnings;
    let written = write_copy(host, &bank, &state, &dir, copy, warnings);
    spool
        .close()
        .with_context(|| format!("cannot remove a temp directory in `{}`", dir.display()))?;
    written
}

/// Copies the bank's `boot.cfg` (its build) and `state.tgz` (its key store, its files) into the
/// spool, where readable: the backup there then compares, labels and encrypts as it would
/// have in the bank.
fn seed_spool(bank: &Path, spool: &Path) -> Result<()> {
    for name in ["boot.cfg", STATE_NAME] {
        let from = bank.join(name);
        if !std::fs::symlink_metadata(&from).is_ok_and(|meta| meta.is_file()) {
            continue;
        }
        let to = spool.join(name);
        if std::fs::copy(&from, &to).is_ok() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot set the mode of `{}`", to.display()))?;
        }
    }
    Ok(())
}
