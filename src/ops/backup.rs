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

use crate::archive::envelope::guard::keep_encryption;
use crate::archive::envelope::Encryption;
use crate::archive::{self, writer::ArchiveLabel, WrittenArchive, STATE_NAME};
use crate::bank::install::ensure_state_listed;
use crate::bank::targets::{alt_role, backup_targets, AltRole, Blacklist, Target};
use crate::bank::{is_tie, next_boot, read_banks, BootCfg};
use crate::clock::now_secs;
use crate::config::Selection;
use crate::detect::cache::{self, cache_path, Header};
use crate::detect::configstore::SnapshotOptions;
use crate::detect::{detect, Archived, ChangeSet, Detection};
use crate::error::Error;
use crate::fs::atomic;
use crate::host::Host;
use crate::lock::lock_for_writing;
use crate::lock::{lock_root, RootAccess};
use crate::ops::pending;
use crate::records::{FileTable, PathList, Records, StatKey};

/// The longest a shutdown backup waits for the lock.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    pub force: bool,
    pub dry_run: bool,
    pub shutdown: bool,
    pub bank: Option<PathBuf>,
    pub wait: Duration,
    /// Let a plaintext archive replace an encrypted one (logged).
    pub allow_plaintext: bool,
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
    pub added: PathList,
    pub modified: PathList,
    pub removed: PathList,
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Selection notes (a skipped or missing configured path): warnings shown with `-v`.
    #[serde(skip)]
    pub notes: Vec<String>,
    /// Known, chosen conditions (a bank left alone for a pending install, a rollback target
    /// booting next): to syslog on every run, on stderr only with `-v`.
    #[serde(skip)]
    pub chosen: Vec<String>,
}

/// Runs a backup of `host` as `options` say.
pub fn backup(host: &Host, options: &BackupOptions) -> Result<BackupReport> {
    host.check_root()?;
    let rules = host.selection()?;
    let (targets, mut warnings, mut chosen) = target_banks(host, options)?;
    let wait = wait_of(options);
    let run_dir = host.run_dir()?.to_path_buf();
    let target_refs: Vec<&Path> = targets.iter().map(|t| t.path.as_path()).collect();
    // The one lock order: the root (no restore writes it while we read it), then the banks.
    let _root = lock_root(&run_dir, &host.root, RootAccess::Read, wait)?;
    let locks = lock_for_writing(host, &target_refs, wait)?;
    warnings.extend(locks.warnings.iter().cloned());
    for bank in &target_refs {
        warnings.extend(clean_bank(host, bank)?);
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(backup_bank(
            host,
            &rules,
            target,
            options,
            &run_dir,
            &mut warnings,
        )?);
    }
    let written = outcomes.iter().any(|o| o.written);
    chosen.extend(outcomes.iter_mut().flat_map(|o| o.chosen.drain(..)));
    let primary = outcomes.swap_remove(0);
    let action = match (options.dry_run, written) {
        (true, _) => Action::DryRun,
        (false, true) => Action::Written,
        (false, false) => Action::Unchanged,
    };
    let mut report = report(
        action,
        targets.into_iter().map(|t| t.path).collect(),
        primary.archive,
        primary.files,
        primary.bytes,
        primary.sha256,
        primary.changes,
        warnings,
    );
    report.notes = primary.notes;
    report.chosen = chosen;
    Ok(report)
}

/// How long this run waits for a lock (the bank's, ConfigStore's): `--shutdown` caps it.
fn wait_of(options: &BackupOptions) -> Duration {
    if options.shutdown {
        options.wait.min(SHUTDOWN_WAIT)
    } else {
        options.wait
    }
}

/// Recovers a `state.tgz` a cut replace left missing and removes a killed run's temp files.
fn clean_bank(host: &Host, bank: &Path) -> Result<Option<String>> {
    let recovered = archive::recover::recover_state(bank, &host.limits)?.map(|temp| {
        format!(
            "`{}` was missing (a replace was cut short); recovered it from `{}`",
            bank.join(STATE_NAME).display(),
            temp.display()
        )
    });
    atomic::remove_stale_temps(bank)
        .with_context(|| format!("cannot clean bank `{}`", bank.display()))?;
    Ok(recovered)
}

/// What a backup did in one bank.
struct BankOutcome {
    written: bool,
    archive: PathBuf,
    files: usize,
    bytes: u64,
    sha256: Option<String>,
    changes: ChangeSet,
    notes: Vec<String>,
    chosen: Vec<String>,
}

/// Detects against `target`'s own archive and writes it when something changed: each bank's
/// archive has its own build in the manifest and, for an upgraded bank, leaves out the
/// configblacklist paths, so each bank is compared and written on its own.
fn backup_bank(
    host: &Host,
    rules: &Selection,
    target: &Target,
    options: &BackupOptions,
    run_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<BankOutcome> {
    let bank = &target.path;
    let archive_path = bank.join(STATE_NAME);
    let cache_file = cache_path(run_dir, &host.root, bank);
    let run_start = now_secs();
    let snapshots = SnapshotOptions {
        dir: run_dir.to_path_buf(),
        wait: wait_of(options),
    };
    let mut detection = detect(
        &host.root,
        rules,
        Some(&archive_path),
        Some(&cache_file),
        &host.limits,
        Some(&snapshots),
    )?;
    leave_out(&mut detection, &target.blacklist);
    if let Archived::Unreadable(reason) = &detection.archived {
        warnings.push(format!(
            "existing archive `{}` cannot be read ({reason}); writing a fresh one",
            archive_path.display()
        ));
    }
    let nothing_to_save = guard_empty_selection(host, &detection, &archive_path, options)?;
    if nothing_to_save {
        warnings.push(format!(
            "nothing is selected under root `{}` (no file with a .# branch); no archive written",
            host.root.display()
        ));
    }
    if let Some(stale) = &detection.stale_manifest {
        warnings.push(format!("{stale}; writing a fresh archive"));
    }
    let pending = pending::standing(run_dir, &host.root, bank, &detection.archived);
    if pending.is_some() && !options.force && !options.dry_run {
        let mut outcome = kept(detection, bank, archive_path, false, warnings)?;
        outcome.chosen.push(pending::left_alone(bank));
        return Ok(outcome);
    }
    let unreadable =
        matches!(detection.archived, Archived::Unreadable(_)) || detection.stale_manifest.is_some();
    // `--shutdown` only waits less: like every run it writes nothing when nothing changed.
    let must_write =
        !nothing_to_save && (options.force || unreadable || !detection.changes.is_empty());
    if !must_write || options.dry_run {
        return kept(detection, bank, archive_path, options.dry_run, warnings);
    }
    // The archive's records are dropped before the writer runs (at 100,000 files, MiB); the
    // selection's table is what the writer reads from and records into.
    let Detection {
        selected, changes, ..
    } = detection;
    let mut files = selected.files;
    let label = ArchiveLabel {
        host: host.hostname()?,
        build: target.build.clone(),
    };
    // Encrypted again over an encrypted archive; plaintext over one only with --allow-plaintext.
    let (encryption, downgrade) =
        keep_encryption(&archive_path, options.allow_plaintext, &host.limits)?;
    warnings.extend(downgrade);
    let written = write_with_retry(bank, &mut files, &label, run_dir, encryption.as_ref())?;
    warnings.extend(ensure_state_listed(std::slice::from_ref(bank))?);
    save_cache(run_dir, host, bank, &files, &written, run_start);
    pending.iter().for_each(pending::clear);
    Ok(BankOutcome {
        written: true,
        archive: archive_path,
        files: written.files,
        bytes: written.bytes,
        sha256: Some(written.sha256.clone()),
        changes,
        notes: selected.notes,
        chosen: Vec::new(),
    })
}

/// An empty selection never replaces a non-empty archive without `--force`; returns true when
/// nothing is selected and there is no archive (nothing to write). An unreadable archive is
/// replaced as always: a corrupt `state.tgz` listed in `boot.cfg` can stop the host booting.
fn guard_empty_selection(
    host: &Host,
    detection: &Detection,
    archive_path: &Path,
    options: &BackupOptions,
) -> Result<bool> {
    if !detection.current().is_empty() || options.force {
        return Ok(false);
    }
    let held = match &detection.archived {
        Archived::Missing => return Ok(true),
        Archived::Present { records, .. } if !records.is_empty() => records.len(),
        _ => return Ok(false),
    };
    bail!(
        "nothing is selected under root `{}`, so backup would replace `{}` and its {held} files \
         with an empty archive; it was kept; check --root (a wrong root selects nothing) and that \
         the modified files still have their .# branches, or pass --force to write the empty \
         archive",
        host.root.display(),
        archive_path.display()
    )
}

/// The outcome when nothing is written (nothing changed, or `--dry-run`); a kept archive still
/// gets listed in `boot.cfg`.
fn kept(
    detection: Detection,
    bank: &Path,
    archive: PathBuf,
    dry_run: bool,
    warnings: &mut Vec<String>,
) -> Result<BankOutcome> {
    let (bytes, sha256, files) = match &detection.archived {
        Archived::Present {
            records,
            sha256,
            bytes,
        } => (*bytes, Some(sha256.clone()), records.len()),
        _ => (0, None, 0),
    };
    if !dry_run && sha256.is_some() {
        warnings.extend(ensure_state_listed(&[bank.to_path_buf()])?);
    }
    Ok(BankOutcome {
        written: false,
        archive,
        files: if dry_run {
            detection.current().len()
        } else {
            files
        },
        bytes,
        sha256,
        changes: detection.changes,
        notes: detection.selected.notes,
        chosen: Vec::new(),
    })
}

/// Drops the configblacklist paths from the selection and from the changes.
pub fn leave_out(detection: &mut Detection, blacklist: &Blacklist) {
    if blacklist.is_empty() {
        return;
    }
    detection
        .selected
        .files
        .retain(|path| !blacklist.covers(path));
    let changes = &mut detection.changes;
    for list in [
        &mut changes.added,
        &mut changes.modified,
        &mut changes.removed,
    ] {
        list.retain(|path| !blacklist.covers(path));
    }
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
        notes: Vec::new(),
        chosen: Vec::new(),
    }
}

/// The banks to write, the bootbank first: `--bank` alone, else as `bank::targets` decides
/// (the bootbank, plus a staged upgrade's bank; never a rollback target); and the warnings,
/// then the chosen conditions (a rollback target booting next) apart.
fn target_banks(
    host: &Host,
    options: &BackupOptions,
) -> Result<(Vec<Target>, Vec<String>, Vec<String>)> {
    if let Some(bank) = &options.bank {
        if !bank.is_dir() {
            bail!("bank `{}` is not a directory; check --bank", bank.display());
        }
        let build = BootCfg::load(&bank.join("boot.cfg"))
            .ok()
            .and_then(|cfg| cfg.build().map(str::to_string))
            .unwrap_or_default();
        let target = Target {
            path: bank.clone(),
            build,
            blacklist: Blacklist::default(),
        };
        return Ok((vec![target], Vec::new(), Vec::new()));
    }
    let banks = read_banks(host);
    if next_boot(&banks).is_none() {
        bail!(
            "no eligible boot bank (bootbank `{}`: {}; altbootbank `{}`: {}); \
             fix boot.cfg or name the target with --bank DIR",
            banks.bootbank.path.display(),
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.path.display(),
            banks.altbootbank.eligibility().err().unwrap_or_default(),
        );
    }
    let (targets, warnings) = backup_targets(&banks, &host.root);
    // The one warning of a rollback target is a chosen condition: not mailed every hour.
    let (warnings, mut chosen) = match alt_role(&banks) {
        AltRole::RollbackTarget => (Vec::new(), warnings),
        _ => (warnings, Vec::new()),
    };
    if is_tie(&banks) {
        chosen.push(format!(
            "tie: both banks are eligible with updated={}; the loader boots the first partition, \
             which statectl cannot see: it takes the bootbank (bank set-next ends the tie)",
            banks.bootbank.updated()
        ));
    }
    Ok((targets, warnings, chosen))
}

/// Writes the archive of `files` into `bank`; a file that changes while it is read gets one
/// more try.
fn write_with_retry(
    bank: &Path,
    files: &mut FileTable,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    match write_into(bank, files, label, scratch, encryption) {
        Err(err) if is_file_changed(&err) => write_into(bank, files, label, scratch, encryption),
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
    files: &mut FileTable,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
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
        archive::write_archive_file(temp.as_file_mut(), files, label, scratch, encryption)
            .with_context(fail)?;
    atomic::commit(temp, &target).with_context(fail)?;
    Ok(written)
}

/// Saves the stat cache of the archive just written from `files` (each with the stat it was
/// read under).
fn save_cache(
    run_dir: &Path,
    host: &Host,
    bank: &Path,
    files: &FileTable,
    written: &WrittenArchive,
    run_start: i64,
) {
    let Ok(meta) = std::fs::metadata(bank.join(STATE_NAME)) else {
        return;
    };
    let header = Header {
        archive: &StatKey::of(&meta),
        archive_sha256: &written.sha256,
        archive_bytes: written.bytes,
    };
    let trusted = |i: usize| cache::trusted_stat(files.stat(i), run_start);
    // Advisory: a lost cache costs one hashing pass, never correctness.
    let file = cache_path(run_dir, &host.root, bank);
    let record_of = |i: usize| Some(files.record(i));
    let _ = cache::save(&file, &header, files.len(), record_of, trusted);
}
