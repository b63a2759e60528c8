//! `backup`: detect, then write `state.tgz` atomically into the target bank(s), under the lock.
//!
//! Order of writes, so that a crash at any instant leaves a bootable bank: the new archive goes
//! to a temp file in the bank, is fsynced, renamed over `state.tgz` and the directory fsynced;
//! only then is `boot.cfg` taught to list `state.tgz` (also through temp + rename), so it never
//! names an archive that is not there. A run with nothing to save opens nothing for writing in
//! the bank.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::archive::{self, writer::ArchiveLabel, SourceFile, WrittenArchive, STATE_NAME};
use crate::atomic;
use crate::bank::install::{copy_verified, ensure_state_listed};
use crate::bank::{lock_banks, next_boot, read_banks, BankName, BootCfg};
use crate::detect::cache::{self, cache_path, Header};
use crate::detect::{
    detect, now_secs, Archived, Cache, ChangeSet, RecordRef, RecordTable, StatKey,
};
use crate::error::Error;
use crate::host::Host;

/// The longest a shutdown backup waits for the lock.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    pub force: bool,
    pub dry_run: bool,
    pub shutdown: bool,
    pub bank: Option<PathBuf>,
    pub wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "written")]
    Written,
    #[serde(rename = "unchanged")]
    Unchanged,
    #[serde(rename = "dry-run")]
    DryRun,
}

/// The outcome of `backup` (its JSON form is the contract's).
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub action: Action,
    pub banks: Vec<PathBuf>,
    pub archive: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub sha256: Option<String>,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Runs a backup of `host` as `options` say.
pub fn backup(host: &Host, options: &BackupOptions) -> Result<BackupReport> {
    host.check_root()?;
    let rules = host.selection()?;
    let (targets, mut warnings) = target_banks(host, options)?;
    let wait = if options.shutdown {
        options.wait.min(SHUTDOWN_WAIT)
    } else {
        options.wait
    };
    let run_dir = host.run_dir()?.to_path_buf();
    let target_refs: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    let _locks = lock_banks(&run_dir, &target_refs, wait)?;
    for bank in &targets {
        if let Some(temp) = archive::recover::recover_state(bank, &host.limits)? {
            warnings.push(format!(
                "`{}` was missing (a replace was cut short); recovered it from `{}`",
                bank.join(STATE_NAME).display(),
                temp.display()
            ));
        }
        atomic::remove_stale_temps(bank)
            .with_context(|| format!("cannot clean bank `{}`", bank.display()))?;
    }
    let primary = &targets[0];
    let archive_path = primary.join(STATE_NAME);
    let cache_file = cache_path(&run_dir, &host.root, primary);
    let run_start = now_secs();
    let detection = detect(
        &host.root,
        &rules,
        Some(&archive_path),
        Some(&cache_file),
        &host.limits,
    )?;
    if let Archived::Unreadable(reason) = &detection.archived {
        warnings.push(format!(
            "existing archive `{}` cannot be read ({reason}); writing a fresh one",
            archive_path.display()
        ));
    }
    let changes = detection.changes.clone();
    let unreadable = matches!(detection.archived, Archived::Unreadable(_));
    let must_write = options.force || options.shutdown || unreadable || !changes.is_empty();
    if !must_write || options.dry_run {
        let action = if options.dry_run {
            Action::DryRun
        } else {
            Action::Unchanged
        };
        let (bytes, sha256, files) = match &detection.archived {
            Archived::Present {
                records,
                sha256,
                bytes,
            } => (*bytes, Some(sha256.clone()), records.len()),
            _ => (0, None, 0),
        };
        let files = if options.dry_run {
            detection.current.len()
        } else {
            files
        };
        if let (
            false,
            Archived::Present {
                records, sha256, ..
            },
        ) = (options.dry_run, &detection.archived)
        {
            warnings.extend(ensure_state_listed(&targets[..1])?);
            for other in &targets[1..] {
                warnings.extend(catch_up(
                    &run_dir,
                    host,
                    &archive_path,
                    other,
                    sha256,
                    records,
                )?);
            }
        }
        return Ok(report(
            action,
            targets.clone(),
            archive_path,
            files,
            bytes,
            sha256,
            changes,
            warnings,
        ));
    }
    // The selection is consumed (names moved, not copied) and the rest of the detection
    // dropped before the writer runs: at 100,000 files that is tens of MiB.
    let sources: Vec<SourceFile> = detection
        .selected
        .files
        .into_iter()
        .map(|c| SourceFile {
            path: c.path,
            abs: c.abs,
        })
        .collect();
    drop((detection.current, detection.archived));
    let label = ArchiveLabel {
        host: host.hostname(),
        build: bank_build(primary),
    };
    let written = write_with_retry(primary, &sources, &label, &run_dir)?;
    for other in &targets[1..] {
        copy_verified(
            &archive_path,
            &other.join(STATE_NAME),
            Some(&written.sha256),
        )?;
    }
    warnings.extend(ensure_state_listed(&targets)?);
    for bank in &targets {
        save_cache(&run_dir, host, bank, &written, run_start);
    }
    Ok(report(
        Action::Written,
        targets.clone(),
        archive_path,
        written.records.len(),
        written.bytes,
        Some(written.sha256.clone()),
        changes,
        warnings,
    ))
}

/// Gives `bank` the primary archive when an interrupted run left it behind (the primary was
/// written, this copy was not); returns boot.cfg warnings. The stat cache vouches for a bank
/// already in sync, so the no-change path reads nothing there.
fn catch_up(
    run_dir: &Path,
    host: &Host,
    primary: &Path,
    bank: &Path,
    sha256: &str,
    records: &RecordTable,
) -> Result<Vec<String>> {
    let target = bank.join(STATE_NAME);
    let cache_file = cache_path(run_dir, &host.root, bank);
    let meta = std::fs::symlink_metadata(&target).ok();
    if let Some(meta) = &meta {
        let vouched = Cache::load(&cache_file)
            .is_some_and(|c| c.archive == StatKey::of(meta) && c.archive_sha256 == sha256);
        if vouched {
            return Ok(Vec::new());
        }
    }
    let in_sync = meta.is_some_and(|m| m.is_file())
        && crate::detect::hash_file(&target).ok().as_deref() == Some(sha256);
    let mut warnings = Vec::new();
    if !in_sync {
        copy_verified(primary, &target, Some(sha256))?;
        warnings = ensure_state_listed(&[bank.to_path_buf()])?;
    }
    if let Ok(meta) = std::fs::metadata(&target) {
        let header = Header {
            archive: &StatKey::of(&meta),
            archive_sha256: sha256,
            archive_bytes: meta.len(),
        };
        // Advisory, as every cache write.
        let record_of = |i: usize| Some(records.get(i));
        let _ = cache::save(&cache_file, &header, records.len(), record_of, |_| None);
    }
    Ok(warnings)
}

#[allow(clippy::too_many_arguments)]
fn report(
    action: Action,
    banks: Vec<PathBuf>,
    archive: PathBuf,
    files: usize,
    bytes: u64,
    sha256: Option<String>,
    changes: ChangeSet,
    warnings: Vec<String>,
) -> BackupReport {
    BackupReport {
        action,
        banks,
        archive,
        files,
        bytes,
        sha256,
        added: changes.added,
        modified: changes.modified,
        removed: changes.removed,
        warnings,
    }
}

/// The banks to write, the primary first: `--bank`, else the next-boot bank plus the bootbank
/// when the next boot is the altbootbank (a staged upgrade) and the bootbank is eligible.
fn target_banks(host: &Host, options: &BackupOptions) -> Result<(Vec<PathBuf>, Vec<String>)> {
    if let Some(bank) = &options.bank {
        if !bank.is_dir() {
            bail!("bank `{}` is not a directory; check --bank", bank.display());
        }
        return Ok((vec![bank.clone()], Vec::new()));
    }
    let banks = read_banks(host);
    let Some(next) = next_boot(&banks) else {
        bail!(
            "no eligible boot bank (bootbank `{}`: {}; altbootbank `{}`: {}); \
             fix boot.cfg or name the target with --bank DIR",
            banks.bootbank.path.display(),
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.path.display(),
            banks.altbootbank.eligibility().err().unwrap_or_default(),
        );
    };
    let mut targets = vec![banks.get(next).path.clone()];
    if next == BankName::Altbootbank && banks.bootbank.is_eligible() {
        targets.push(banks.bootbank.path.clone());
    }
    Ok((targets, Vec::new()))
}

fn bank_build(bank: &Path) -> String {
    BootCfg::load(&bank.join("boot.cfg"))
        .ok()
        .and_then(|cfg| cfg.get("build").map(str::to_string))
        .unwrap_or_default()
}

/// Writes the archive into `bank`; a file that changes while it is read gets one more try.
fn write_with_retry(
    bank: &Path,
    sources: &[SourceFile],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    match write_into(bank, sources, label, scratch) {
        Err(err) if is_file_changed(&err) => write_into(bank, sources, label, scratch),
        other => other,
    }
}

fn is_file_changed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<Error>(),
            Some(Error::FileChanged { .. })
        )
    })
}

fn write_into(
    bank: &Path,
    sources: &[SourceFile],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    let target = bank.join(STATE_NAME);
    let fail = || {
        format!(
            "cannot write a new archive into bank `{}` (the old one is kept); check that the \
             bank is mounted read-write, has free space and its state.tgz is a regular file",
            bank.display()
        )
    };
    let mut temp = atomic::temp_in(bank).with_context(fail)?;
    let written =
        archive::write_archive(temp.as_file_mut(), sources, label, scratch).with_context(fail)?;
    atomic::commit(temp, &target).with_context(fail)?;
    Ok(written)
}

fn save_cache(run_dir: &Path, host: &Host, bank: &Path, written: &WrittenArchive, run_start: i64) {
    let Ok(meta) = std::fs::metadata(bank.join(STATE_NAME)) else {
        return;
    };
    let header = Header {
        archive: &StatKey::of(&meta),
        archive_sha256: &written.sha256,
        archive_bytes: written.bytes,
    };
    let trusted = |i: usize| {
        let meta = written.metadata.get(i)?;
        cache::trusted_stat(meta, run_start)
    };
    // Advisory: a lost cache costs one hashing pass, never correctness.
    let file = cache_path(run_dir, &host.root, bank);
    let records = &written.records;
    let record_of = |i: usize| records.get(i).and_then(RecordRef::of);
    let _ = cache::save(&file, &header, records.len(), record_of, trusted);
}
