//! Detection: select the persisted files, learn what the archive holds, and compare.
//!
//! The fast path reads neither the archive nor any unchanged file: the stat cache (see
//! [`cache`]) vouches for the archive's records while the archive's own stat is unchanged, and
//! for each file's hash while its stat is unchanged. Without a valid cache the archive is read
//! in full by the one reader (both layers drained, hashes computed from the real content), so
//! archives made by ESXi or by hand, with no manifest, compare by content just the same.

mod budget;
pub mod cache;
mod cachefile;
pub mod changes;
pub mod configstore;
pub mod inroot;
pub mod select;

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::archive::{self, CheckOnly, Limits};
use crate::clock::now_secs;
use crate::config::Selection;
use crate::fs::hostfile::RootReader;
use crate::records::{FileTable, PathOrder, RecordRef, RecordTable, Records, StatKey};
pub use cache::Cache;
pub use changes::{compare, ChangeSet};
pub use select::{select, Selected};

/// What the archive in a bank holds.
#[derive(Debug, Clone)]
pub enum Archived {
    Missing,
    /// It exists but cannot be read; the reason, for a warning.
    Unreadable(String),
    Present {
        records: RecordTable,
        sha256: String,
        bytes: u64,
    },
}

static NO_RECORDS: RecordTable = RecordTable::EMPTY;

impl Archived {
    pub fn records(&self) -> &RecordTable {
        match self {
            Archived::Present { records, .. } => records,
            _ => &NO_RECORDS,
        }
    }
}

/// The outcome of one detection.
#[derive(Debug)]
pub struct Detection {
    /// The selected files, each with its current record; its digest is known where it decides
    /// the comparison (see [`hash_where_needed`]).
    pub selected: Selected,
    pub archived: Archived,
    pub changes: ChangeSet,
    /// The warning of an archive whose `statectl.json` did not match (read without it): a
    /// backup writes a fresh archive over it.
    pub stale_manifest: Option<String>,
}

impl Detection {
    /// The current record of each selected file, in path order.
    pub fn current(&self) -> &FileTable {
        &self.selected.files
    }
}

/// Compares the host under `root` with the archive at `archive_path` (none: an empty archive),
/// using and refreshing the cache file `cache_file` when given; with `snapshots`, a live
/// ConfigStore is archived as its snapshot ([`configstore`]).
pub fn detect(
    root: &Path,
    rules: &Selection,
    archive_path: Option<&Path>,
    cache_file: Option<&Path>,
    limits: &Limits,
    snapshots: Option<&configstore::SnapshotOptions>,
) -> Result<Detection> {
    let run_start = now_secs();
    let mut selected = select(root, rules)?;
    if let Some(options) = snapshots {
        configstore::add_live_store(root, rules, &mut selected.files, options)?;
    }
    let opened = match archive_path {
        Some(path) => open_archive(path)?,
        None => Err(Archived::Missing),
    };
    let stamp = opened.as_ref().ok().map(|(_, meta)| StatKey::of(meta));
    let mut cache =
        cache_file.and_then(|file| load_cache(file, stamp.as_ref(), &mut selected.files));
    let mut stale_manifest = None;
    let archived = match (opened, cache.as_mut().filter(|c| c.vouched)) {
        (Err(archived), _) => archived,
        // The cache stands for this archive: its records are the archive's (moved out).
        (Ok(_), Some(cache)) => Archived::Present {
            records: std::mem::take(&mut cache.records),
            sha256: cache.archive_sha256.clone(),
            bytes: cache.archive_bytes,
        },
        // (An opened archive always has a path.)
        (Ok((file, meta)), None) => {
            let path = archive_path.unwrap_or(Path::new(""));
            let (archived, stale) = read_archived(file, &meta, path, limits);
            stale_manifest = stale;
            archived
        }
    };
    hash_where_needed(&mut selected.files, archived.records())?;
    let changes = compare(&selected.files, archived.records());
    // No cache for a stale manifest's archive: each run reads it (and warns) until a backup
    // writes a fresh one.
    let stamp = stamp.filter(|_| stale_manifest.is_none());
    if let (Some(file), Some(stamp)) = (cache_file, stamp) {
        let run = Run {
            files: &selected.files,
            start: run_start,
        };
        refresh_cache(file, cache.as_ref(), stamp, &archived, &run);
    }
    Ok(Detection {
        selected,
        archived,
        changes,
        stale_manifest,
    })
}

/// The archive file and its stat, or what it counts as when there is none to read. It is
/// opened without blocking: a FIFO, device or socket planted there is refused (exit 1).
fn open_archive(path: &Path) -> Result<Result<(File, Metadata), Archived>> {
    let opened = match crate::fs::hostfile::open_nonblocking(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(Err(Archived::Missing)),
        Err(err) => return Ok(Err(Archived::Unreadable(format!("{err:#}")))),
    };
    let meta = &opened.1;
    if !meta.is_file() && !meta.is_dir() {
        return Err(crate::fs::hostfile::not_regular(path, meta));
    }
    Ok(Ok(opened))
}

/// Loads the stat cache, taking from it the digest of every selected file whose stat is the
/// one it trusts (a damaged cache takes nothing back).
fn load_cache(file: &Path, stamp: Option<&StatKey>, files: &mut FileTable) -> Option<Cache> {
    // Records come in path order, like the files, so the next match is usually the next file.
    let mut next = 0;
    let cache = Cache::load(file, stamp, &mut |record, trusted| {
        let Some(trusted) = trusted else { return };
        let at = if next < files.len() && files.path(next) == record.path {
            next
        } else {
            match files.find(record.path) {
                Some(at) => at,
                None => return,
            }
        };
        next = at + 1;
        if files.stat(at).key() == *trusted {
            files.set_sha256(at, record.sha256);
        }
    });
    if cache.is_none() {
        files.forget_digests();
    }
    cache
}

/// Reads the whole archive through the one reader: what it holds, or why it cannot be read;
/// and the warning about its manifest when that did not match.
fn read_archived(
    file: File,
    meta: &Metadata,
    path: &Path,
    limits: &Limits,
) -> (Archived, Option<String>) {
    if meta.is_dir() {
        return (Archived::Unreadable("it is a directory".into()), None);
    }
    let summary = match archive::read_archive_from(file, path, limits, &mut CheckOnly) {
        Ok(summary) => summary,
        Err(err) => return (Archived::Unreadable(format!("{err:#}")), None),
    };
    let stale = summary.stale_manifest_warning();
    let archived = Archived::Present {
        records: summary.files,
        sha256: summary.sha256,
        bytes: summary.bytes,
    };
    (archived, stale)
}

/// Hashes the selected files whose content decides whether they changed: those the cache did
/// not vouch for that have an archived record of the same path, size, mode, owner and mtime.
/// Any other file is added or modified whatever it holds, so it is not read here (a first
/// backup reads each file once, in the writer).
fn hash_where_needed(files: &mut FileTable, archived: &RecordTable) -> Result<()> {
    let order = PathOrder::of(archived);
    let metadata = |r: &RecordRef| (r.size, r.mode, r.uid, r.gid, r.mtime);
    let mut reader: Option<RootReader> = None;
    for i in files.indices() {
        if files.sha256(i).is_some() {
            continue;
        }
        let Some(k) = order.find(archived, files.path(i)) else {
            continue;
        };
        if metadata(&archived.get(order.at(k))) == metadata(&files.record(i)) {
            let reader = match &mut reader {
                Some(reader) => reader,
                None => reader.insert(RootReader::open(files.root())?),
            };
            // The file selected, through the in-root walk (a swapped directory stops the run).
            let (file, _) = files.open(reader, i)?;
            let digest = digest_of(file, &files.location(i))?;
            files.set_sha256(i, digest);
        }
    }
    Ok(())
}

/// What this run saw of the host: the selected files with their current records, and when
/// the run started.
struct Run<'a> {
    files: &'a FileTable,
    start: i64,
}

/// Saves a cache for the archive just compared, unless the loaded one already says the same
/// (the no-change path then writes nothing and builds nothing).
fn refresh_cache(
    file: &Path,
    loaded: Option<&Cache>,
    stamp: StatKey,
    archived: &Archived,
    run: &Run,
) {
    let Archived::Present {
        records,
        sha256,
        bytes,
    } = archived
    else {
        return;
    };
    let files = run.files;
    // Records come in path order too, so the next match is usually just past the last one.
    let next = std::cell::Cell::new(0);
    let stat_of = |i: usize| -> Option<StatKey> {
        let archived = records.get(i);
        let guess = next.get();
        let at = if guess < files.len() && files.path(guess) == archived.path {
            guess
        } else {
            files.find(archived.path)?
        };
        next.set(at + 1);
        files
            .record(at)
            .same_state(&archived)
            .then(|| cache::trusted_stat(files.stat(at), run.start))
            .flatten()
    };
    let unchanged = loaded.is_some_and(|c| {
        c.vouched
            && c.archive_sha256 == *sha256
            && c.archive_bytes == *bytes
            && c.stat_prints.len() == records.len()
            && (0..records.len())
                .all(|i| c.stat_prints[i] == cache::stat_print(stat_of(i).as_ref()))
    });
    if unchanged {
        return;
    }
    let header = cache::Header {
        archive: &stamp,
        archive_sha256: sha256,
        archive_bytes: *bytes,
    };
    // The cache only saves time; failing to write it must not fail the run.
    let record_of = |i: usize| Some(records.get(i));
    let _ = cache::save(file, &header, records.len(), record_of, stat_of);
}

/// The sha256 of the content of `file` (read from `path`, for messages).
pub fn digest_of(mut file: File, path: &Path) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let got = file
            .read(&mut buf)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
    }
    Ok(hasher.finalize().into())
}
