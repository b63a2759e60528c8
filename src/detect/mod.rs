//! Detection: select the persisted files, learn what the archive holds, and compare.
//!
//! The fast path reads neither the archive nor any unchanged file: the stat cache (see
//! [`cache`]) vouches for the archive's records while the archive's own stat is unchanged, and
//! for each file's hash while its stat is unchanged. Without a valid cache the archive is read
//! in full by the one reader (both layers drained, hashes computed from the real content), so
//! archives made by ESXi or by hand, with no manifest, compare by content just the same.

pub mod cache;
mod cachefile;
pub mod changes;
pub mod inroot;
pub mod select;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::archive::{self, CheckOnly, FileRecord, Limits};
use crate::config::Selection;
pub use cache::{Cache, StatKey};
pub use changes::{compare, ChangeSet};
pub use select::{select, Candidate, Selected};

/// What the archive in a bank holds.
#[derive(Debug, Clone)]
pub enum Archived {
    Missing,
    /// It exists but cannot be read; the reason, for a warning.
    Unreadable(String),
    Present {
        records: Vec<FileRecord>,
        sha256: String,
        bytes: u64,
    },
}

impl Archived {
    pub fn records(&self) -> &[FileRecord] {
        match self {
            Archived::Present { records, .. } => records,
            _ => &[],
        }
    }
}

/// The outcome of one detection.
#[derive(Debug)]
pub struct Detection {
    pub selected: Selected,
    /// The current record of each selected file, in the same order.
    pub current: Vec<FileRecord>,
    pub archived: Archived,
    pub changes: ChangeSet,
}

/// Compares the host under `root` with the archive at `archive_path` (none: an empty archive),
/// using and refreshing the cache file `cache_file` when given.
pub fn detect(
    root: &Path,
    rules: &Selection,
    archive_path: Option<&Path>,
    cache_file: Option<&Path>,
    limits: &Limits,
) -> Result<Detection> {
    let run_start = now_secs();
    let selected = select(root, rules)?;
    let cache = cache_file.and_then(Cache::load);
    let (archived, stamp) = match archive_path {
        Some(path) => read_archived(path, cache.as_ref(), limits)?,
        None => (Archived::Missing, None),
    };
    let current = current_records(&selected.files, cache.as_ref())?;
    let branched = selected
        .files
        .iter()
        .filter(|c| c.branched)
        .map(|c| c.path.clone())
        .collect();
    let changes = compare(&current, archived.records(), branched);
    if let (Some(file), Some(stamp)) = (cache_file, stamp) {
        refresh_cache(
            file,
            cache.as_ref(),
            stamp,
            &archived,
            &selected,
            &current,
            run_start,
        );
    }
    Ok(Detection {
        selected,
        current,
        archived,
        changes,
    })
}

fn read_archived(
    path: &Path,
    cache: Option<&Cache>,
    limits: &Limits,
) -> Result<(Archived, Option<StatKey>)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Archived::Missing, None))
        }
        Err(err) => return Ok((Archived::Unreadable(format!("cannot open it: {err}")), None)),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat `{}`", path.display()))?;
    let stamp = StatKey::of(&meta);
    if let Some(cache) = cache.filter(|c| c.archive == stamp) {
        let archived = Archived::Present {
            records: cache.records(),
            sha256: cache.archive_sha256.clone(),
            bytes: cache.archive_bytes,
        };
        return Ok((archived, Some(stamp)));
    }
    if meta.is_dir() {
        return Ok((Archived::Unreadable("it is a directory".into()), None));
    }
    match archive::read_archive_from(file, path, limits, &mut CheckOnly) {
        Ok(summary) => Ok((
            Archived::Present {
                records: summary.files,
                sha256: summary.sha256,
                bytes: summary.bytes,
            },
            Some(stamp),
        )),
        Err(err) => Ok((Archived::Unreadable(format!("{err:#}")), None)),
    }
}

/// The current records of the selected files, reading only those the cache cannot vouch for.
pub fn current_records(
    files: &[select::Candidate],
    cache: Option<&Cache>,
) -> Result<Vec<FileRecord>> {
    let mut memo = Memo::new(cache);
    files
        .iter()
        .map(|candidate| {
            let key = StatKey::of(&candidate.meta);
            let sha256 = match memo.get(&candidate.path) {
                Some((stat, sha)) if *stat == key => sha.to_string(),
                _ => hash_file(&candidate.abs)?,
            };
            Ok(record_of(candidate, sha256))
        })
        .collect()
}

/// The cache's trusted (stat, sha256) per path, sorted by path. Lookups in sorted order (the
/// selection's) cost O(1) each through a cursor; any other order falls back to binary search.
struct Memo<'a> {
    entries: Vec<(&'a str, &'a StatKey, &'a str)>,
    cursor: usize,
}

impl<'a> Memo<'a> {
    fn new(cache: Option<&'a Cache>) -> Memo<'a> {
        let mut entries: Vec<_> = cache
            .map(|c| {
                c.files
                    .iter()
                    .filter_map(|f| {
                        let stat = f.stat.as_ref()?;
                        Some((f.record.path.as_str(), stat, f.record.sha256.as_str()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        Memo { entries, cursor: 0 }
    }

    fn get(&mut self, path: &str) -> Option<(&'a StatKey, &'a str)> {
        let at = match self.entries.get(self.cursor) {
            Some(entry) if entry.0 == path => self.cursor,
            _ => self.entries.binary_search_by(|e| e.0.cmp(path)).ok()?,
        };
        self.cursor = at + 1;
        let (_, stat, sha) = self.entries[at];
        Some((stat, sha))
    }
}

fn record_of(candidate: &select::Candidate, sha256: String) -> FileRecord {
    let meta = &candidate.meta;
    FileRecord {
        path: candidate.path.clone(),
        sha256,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime().max(0),
    }
}

/// Saves a cache for the archive just compared, unless the loaded one already says the same
/// (the no-change path then writes nothing and builds nothing).
fn refresh_cache(
    file: &Path,
    loaded: Option<&Cache>,
    stamp: StatKey,
    archived: &Archived,
    selected: &Selected,
    current: &[FileRecord],
    run_start: i64,
) {
    let Archived::Present {
        records,
        sha256,
        bytes,
    } = archived
    else {
        return;
    };
    // Both lists are sorted by path (the selection's order); records usually are too.
    let stats: Vec<Option<StatKey>> = records
        .iter()
        .map(|archived| {
            let at = current
                .binary_search_by(|r| r.path.as_str().cmp(&archived.path))
                .ok()?;
            current[at]
                .same_state(archived)
                .then(|| cache::trusted_stat(&selected.files[at].meta, run_start))
                .flatten()
        })
        .collect();
    let unchanged = loaded.is_some_and(|c| {
        c.archive == stamp
            && c.archive_sha256 == *sha256
            && c.archive_bytes == *bytes
            && c.files.len() == records.len()
            && c.files
                .iter()
                .zip(records.iter().zip(&stats))
                .all(|(f, (record, stat))| f.stat == *stat && f.record == *record)
    });
    if unchanged {
        return;
    }
    let files = records
        .iter()
        .cloned()
        .zip(stats)
        .map(|(record, stat)| cache::CachedFile { record, stat })
        .collect();
    let fresh = Cache::from_parts(stamp, sha256.clone(), *bytes, files);
    // The cache only saves time; failing to write it must not fail the run.
    let _ = fresh.save(file);
}

/// The sha256 of a file's content, never following a symlink.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
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
    Ok(archive::writer::hex(&hasher.finalize()))
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
