//! ConfigStore (ESXi 7+): most host settings live in a SQLite database,
//! `etc/vmware/configstore/current-store-1`, that hostd writes while the host runs; the copy
//! ESXi persists is `var/lib/vmware/configstore/backup/current-store-1`. When the live store
//! exists, that member is a consistent snapshot of the live database taken with SQLite's
//! online backup (one `sqlite3_backup_step` over the whole store, inside one read
//! transaction), written into the run directory (0600; the host's backup directory is never
//! written) and checked with `PRAGMA integrity_check` before it is used.
//!
//! The snapshot stands for the live store's *stat*: its file is named after a hash of the
//! live store's stat (and that of its `-wal` file, where one exists), so a run whose live store
//! did not move finds the snapshot it took last time with one `stat` and opens nothing; the
//! member's row carries the live store's mode, owner and mtime (see
//! [`FileTable::push_pinned`]), and its content digest comes from the stat cache like any
//! other file's. A store still locked after the wait, or corrupt, fails the run naming it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::inroot::resolve_in_root;
use crate::config::Selection;
use crate::records::hex;
use crate::records::{FileStat, FileTable};

/// The live store, root-relative.
pub const LIVE_STORE: &str = "etc/vmware/configstore/current-store-1";
/// The persisted copy: the member the snapshot is archived as.
pub const STORE_MEMBER: &str = "var/lib/vmware/configstore/backup/current-store-1";
/// How long a reporting command (no `--wait` of its own) waits for the store's write lock.
pub const REPORT_WAIT: Duration = Duration::from_secs(10);
const NAME_PREFIX: &str = "configstore-";
const RETRY: Duration = Duration::from_millis(20);

/// Where snapshots go (the run directory) and how long to wait for a writer.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub dir: PathBuf,
    pub wait: Duration,
}

/// Puts the live store's snapshot into `files` as [`STORE_MEMBER`] (in place of the backup
/// copy) when the live store exists under `root` and the member is not excluded.
pub fn add_live_store(
    root: &Path,
    rules: &Selection,
    files: &mut FileTable,
    options: &SnapshotOptions,
) -> Result<()> {
    if rules.is_excluded(STORE_MEMBER) {
        return Ok(());
    }
    let Some(live) = live_store(root)? else {
        return Ok(());
    };
    let mut stat = live_stat(&live)?;
    // Absolute: the table reads a location relative to the root as under the root.
    let dir = std::path::absolute(&options.dir)
        .with_context(|| format!("cannot resolve `{}`", options.dir.display()))?;
    let snapshot = dir.join(snapshot_name(root, &stat));
    let size = match std::fs::symlink_metadata(&snapshot) {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => {
            // SQLite opens the store by path: it must be, before and after, the file the
            // in-root walk found, so no link swapped in meanwhile gets it an outside file.
            let seen = in_root_identity(root, &live)?;
            check_same(&live, seen)?;
            let size = take_fresh(&live, &snapshot, options)?;
            check_same(&live, seen)?;
            size
        }
    };
    stat.size = size;
    files.push_pinned(STORE_MEMBER, snapshot, stat)?;
    files.sort_by_path();
    Ok(())
}

/// The live store's physical path when it is a regular file (links resolved within the root).
fn live_store(root: &Path) -> Result<Option<PathBuf>> {
    let resolved = resolve_in_root(root, Path::new(LIVE_STORE)).with_context(|| {
        format!(
            "cannot look up ConfigStore `{}`",
            root.join(LIVE_STORE).display()
        )
    })?;
    let Some(rel) = resolved else { return Ok(None) };
    let live = root.join(rel);
    match std::fs::symlink_metadata(&live) {
        Ok(meta) if meta.is_file() => Ok(Some(live)),
        _ => Ok(None),
    }
}

/// The (device, inode) of the live store as the in-root walk opens it.
fn in_root_identity(root: &Path, live: &Path) -> Result<(u64, u64)> {
    let rel = live.strip_prefix(root).unwrap_or(live);
    let opened = crate::fs::hostfile::RootReader::open(root)?.open_file(rel)?;
    let (_, meta) = opened.with_context(|| format!("ConfigStore `{}` is gone", live.display()))?;
    Ok((meta.dev(), meta.ino()))
}

/// Fails unless `live`, resolved by path as SQLite resolves it, is the file `seen`.
fn check_same(live: &Path, seen: (u64, u64)) -> Result<()> {
    let by_path = std::fs::metadata(live)
        .with_context(|| format!("cannot stat ConfigStore `{}`", live.display()))?;
    if (by_path.dev(), by_path.ino()) != seen {
        bail!(
            "ConfigStore `{}` is not the file found within the root (a directory swapped for a \
             link while it was read?); nothing was written, run again",
            live.display()
        );
    }
    Ok(())
}

/// The live store's stat, its times the later of the store's and its `-wal` file's (a commit
/// into the WAL moves them too).
fn live_stat(live: &Path) -> Result<FileStat> {
    let meta = std::fs::symlink_metadata(live)
        .with_context(|| format!("cannot stat ConfigStore `{}`", live.display()))?;
    let mut stat = FileStat::of(&meta);
    if let Ok(wal) = std::fs::symlink_metadata(wal_of(live)) {
        let wal = FileStat::of(&wal);
        let later = |a: (i64, u32), b: (i64, u32)| a.max(b);
        (stat.mtime, stat.mtime_ns) = later((stat.mtime, stat.mtime_ns), (wal.mtime, wal.mtime_ns));
        (stat.ctime, stat.ctime_ns) = later((stat.ctime, stat.ctime_ns), (wal.ctime, wal.ctime_ns));
        stat.ino ^= wal.size.rotate_left(32);
    }
    Ok(stat)
}

fn wal_of(live: &Path) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// `configstore-<root hash>-<stat hash>.db`: one name per root and live-store stat.
fn snapshot_name(root: &Path, stat: &FileStat) -> String {
    format!("{}{}.db", root_prefix(root), {
        let mut hasher = Sha256::new();
        for field in stat.key().fields() {
            hasher.update(field.to_le_bytes());
        }
        hasher.update(
            [stat.mode, stat.uid, stat.gid]
                .map(u32::to_le_bytes)
                .concat(),
        );
        hex(&hasher.finalize()[..8])
    })
}

fn root_prefix(root: &Path) -> String {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    format!("{NAME_PREFIX}{}-", hex(&digest[..8]))
}

/// Takes a snapshot into a temp file beside `snapshot`, checks it and renames it there; the
/// root's older snapshots go. Returns its size.
fn take_fresh(live: &Path, snapshot: &Path, options: &SnapshotOptions) -> Result<u64> {
    let temp = crate::fs::atomic::temp_in(&options.dir)?;
    if let Err(reason) = take(live, temp.path(), options.wait) {
        bail!(
            "cannot take a consistent copy of ConfigStore `{}`: {reason}; nothing was written \
             (the old archive is kept)",
            live.display()
        );
    }
    let size = temp
        .as_file()
        .metadata()
        .context("cannot stat the ConfigStore snapshot")?
        .len();
    remove_older(&options.dir, snapshot);
    crate::fs::atomic::commit(temp, snapshot)?;
    Ok(size)
}

/// SQLite's online backup of `live` into the (empty) file `out`, then its integrity check.
fn take(live: &Path, out: &Path, wait: Duration) -> Result<(), String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = Connection::open_with_flags(live, flags).map_err(|e| e.to_string())?;
    source.busy_timeout(RETRY).map_err(|e| e.to_string())?;
    let mut copy = Connection::open(out).map_err(|e| e.to_string())?;
    copy.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(|e| e.to_string())?;
    copy_all(&source, &mut copy, wait)?;
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| format!("it is corrupt ({e})"))?;
    if verdict != "ok" {
        return Err(format!("it is corrupt (integrity_check: {verdict})"));
    }
    Ok(())
}

/// Copies every page in one step (one read transaction: a committed state), retrying while a
/// writer holds the lock, up to `wait`.
fn copy_all(source: &Connection, copy: &mut Connection, wait: Duration) -> Result<(), String> {
    let start = Instant::now();
    let backup = Backup::new(source, copy).map_err(|e| e.to_string())?;
    loop {
        match backup.step(-1) {
            Ok(StepResult::Done) => return Ok(()),
            Ok(StepResult::More) => continue,
            Ok(StepResult::Busy | StepResult::Locked) => {}
            Ok(_) => {}
            Err(err) => return Err(describe(err)),
        }
        if start.elapsed() >= wait {
            return Err(format!(
                "it is still locked by a writer after {} s; run again, or give --wait more \
                 seconds",
                wait.as_secs()
            ));
        }
        std::thread::sleep(RETRY);
    }
}

fn describe(err: rusqlite::Error) -> String {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            format!("it is corrupt ({err})")
        }
        _ => err.to_string(),
    }
}

/// Removes this root's snapshots other than `keep` (an earlier stat's).
fn remove_older(dir: &Path, keep: &Path) {
    let Some(prefix) = keep
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.get(..NAME_PREFIX.len() + 17))
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".db") && entry.path() != keep {
            // Advisory: a left-over snapshot costs space in the run directory, nothing else.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
