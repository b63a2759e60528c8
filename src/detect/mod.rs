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
pub mod table;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use table::PathOrder;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::archive::{self, CheckOnly, Limits};
use crate::config::Selection;
pub use cache::{Cache, StatKey};
pub use changes::{compare, ChangeSet};
pub use select::{select, Candidate, Selected};
pub use table::{RecordRef, RecordTable};

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
    pub selected: Selected,
    /// The current record of each selected file, in the same order.
    pub current: RecordTable,
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
    let mut cache = cache_file.and_then(Cache::load);
    let (archived, stamp, vouched) = match archive_path {
        Some(path) => read_archived(path, cache.as_mut(), limits)?,
        None => (Archived::Missing, None, false),
    };
    // The cache's stats pair with its own records, or (moved out) with the archive's.
    let known = match &cache {
        Some(c) if vouched => (archived.records(), c.stats.as_slice()),
        Some(c) => (&c.records, c.stats.as_slice()),
        None => (&NO_RECORDS, &[][..]),
    };
    let current = current_records(&selected.files, Memo::new(known.0, known.1))?;
    let branched = selected
        .files
        .iter()
        .filter(|c| c.branched)
        .map(|c| c.path.clone())
        .collect();
    let changes = compare(&current, archived.records(), branched);
    if let (Some(file), Some(stamp)) = (cache_file, stamp) {
        let run = Run {
            selected: &selected,
            current: &current,
            start: run_start,
        };
        refresh_cache(file, cache.as_ref(), vouched, stamp, &archived, &run);
    }
    Ok(Detection {
        selected,
        current,
        archived,
        changes,
    })
}

/// Reads what the archive holds; true when the cache vouched for it (its records were then
/// moved out of `cache`, not read from the archive).
fn read_archived(
    path: &Path,
    cache: Option<&mut Cache>,
    limits: &Limits,
) -> Result<(Archived, Option<StatKey>, bool)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Archived::Missing, None, false))
        }
        Err(err) => {
            let reason = format!("cannot open it: {err}");
            return Ok((Archived::Unreadable(reason), None, false));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat `{}`", path.display()))?;
    let stamp = StatKey::of(&meta);
    if let Some(cache) = cache.filter(|c| c.archive == stamp) {
        let archived = Archived::Present {
            records: std::mem::take(&mut cache.records),
            sha256: cache.archive_sha256.clone(),
            bytes: cache.archive_bytes,
        };
        return Ok((archived, Some(stamp), true));
    }
    if meta.is_dir() {
        return Ok((
            Archived::Unreadable("it is a directory".into()),
            None,
            false,
        ));
    }
    let summary = match archive::read_archive_from(file, path, limits, &mut CheckOnly) {
        Ok(summary) => summary,
        Err(err) => return Ok((Archived::Unreadable(format!("{err:#}")), None, false)),
    };
    let Some(records) = RecordTable::from_records(&summary.files) else {
        let reason = "a record has no valid sha256".to_string();
        return Ok((Archived::Unreadable(reason), None, false));
    };
    let archived = Archived::Present {
        records,
        sha256: summary.sha256,
        bytes: summary.bytes,
    };
    Ok((archived, Some(stamp), false))
}

/// The current records of the selected files, reading only those `memo` cannot vouch for.
fn current_records(files: &[select::Candidate], mut memo: Memo) -> Result<RecordTable> {
    let mut table = RecordTable::with_capacity(files.len());
    for candidate in files {
        let key = StatKey::of(&candidate.meta);
        let sha256 = match memo.get(&candidate.path) {
            Some((stat, sha)) if *stat == key => sha,
            _ => hash_digest(&candidate.abs)?,
        };
        table.push(&record_of(candidate, sha256));
    }
    Ok(table)
}

/// The cache's trusted (stat, sha256) per path, looked up in the cache's own arrays (nothing
/// copied). Lookups in sorted order (the selection's) cost O(1) each through a cursor; any
/// other order falls back to binary search.
struct Memo<'a> {
    records: &'a RecordTable,
    stats: &'a [Option<StatKey>],
    order: PathOrder,
    cursor: usize,
}

impl<'a> Memo<'a> {
    fn new(records: &'a RecordTable, stats: &'a [Option<StatKey>]) -> Memo<'a> {
        let records = if records.len() == stats.len() {
            records
        } else {
            &NO_RECORDS
        };
        Memo {
            order: PathOrder::of(records),
            records,
            stats,
            cursor: 0,
        }
    }

    fn get(&mut self, path: &str) -> Option<(&'a StatKey, [u8; 32])> {
        let at_cursor = self.cursor < self.records.len()
            && self.records.path(self.order.at(self.cursor)) == path;
        let k = if at_cursor {
            self.cursor
        } else {
            self.order.find(self.records, path)?
        };
        self.cursor = k + 1;
        let i = self.order.at(k);
        Some((self.stats[i].as_ref()?, self.records.get(i).sha256))
    }
}

fn record_of(candidate: &select::Candidate, sha256: [u8; 32]) -> RecordRef<'_> {
    let meta = &candidate.meta;
    RecordRef {
        path: &candidate.path,
        sha256,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime().max(0),
    }
}

/// What this run saw of the host: the selection, its current records, when it started.
struct Run<'a> {
    selected: &'a Selected,
    current: &'a RecordTable,
    start: i64,
}

/// Saves a cache for the archive just compared, unless the loaded one already says the same
/// (the no-change path then writes nothing and builds nothing). `vouched`: the loaded cache's
/// records are the archive's (moved into `archived`).
fn refresh_cache(
    file: &Path,
    loaded: Option<&Cache>,
    vouched: bool,
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
    // The selection (and so `current`) is sorted by path.
    // Records come in path order too, so the next match is usually just past the last one.
    let next = std::cell::Cell::new(0);
    let stat_of = |i: usize| -> Option<StatKey> {
        let archived = records.get(i);
        let guess = next.get();
        let at = if guess < run.current.len() && run.current.path(guess) == archived.path {
            guess
        } else {
            run.current.find_sorted(archived.path)?
        };
        next.set(at + 1);
        run.current
            .get(at)
            .same_state(&archived)
            .then(|| cache::trusted_stat(&run.selected.files[at].meta, run.start))
            .flatten()
    };
    let header = cache::Header {
        archive: &stamp,
        archive_sha256: sha256,
        archive_bytes: *bytes,
    };
    let unchanged = loaded.is_some_and(|c| {
        c.archive == stamp
            && c.archive_sha256 == *sha256
            && c.archive_bytes == *bytes
            && c.stats.len() == records.len()
            && (vouched || c.records == *records)
            && (0..records.len()).all(|i| c.stats[i] == stat_of(i))
    });
    if unchanged {
        return;
    }
    // The cache only saves time; failing to write it must not fail the run.
    let record_of = |i: usize| Some(records.get(i));
    let _ = cache::save(file, &header, records.len(), record_of, stat_of);
}

/// The sha256 of a file's content as hex, never following a symlink.
pub fn hash_file(path: &Path) -> Result<String> {
    hash_digest(path).map(|digest| archive::writer::hex(&digest))
}

/// The sha256 of a file's content, never following a symlink.
pub fn hash_digest(path: &Path) -> Result<[u8; 32]> {
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
    Ok(hasher.finalize().into())
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
