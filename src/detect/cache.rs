//! The stat cache of the no-change fast path, kept outside the bank.
//!
//! It ties one archive file (by its own stat) to the records it holds, and remembers for each
//! host file the stat it had when its content last matched its record. A later run trusts a file
//! whose size, mtime, ctime, inode and device are unchanged without reading it, and trusts the
//! archive without opening it when the archive's stat is unchanged. Files modified within
//! [`RACY_WINDOW_SECS`] of the run that cached them are never trusted ("racily clean": a write
//! in the same timestamp tick would be invisible). The cache is advisory: any doubt, any parse
//! error, and it is ignored and rebuilt by hashing once.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cachefile;
pub use super::cachefile::Header;
use crate::records::{hex, FileStat, RecordRef, RecordTable, StatKey};

/// Files whose mtime is this close to the run that cached them are re-hashed next time.
pub const RACY_WINDOW_SECS: i64 = 2;

/// A loaded cache. When it stands for the archive being compared (`vouched`: the archive's stat
/// is the one it was made for), it holds that archive's records in archive order and, beside
/// each (same index), a fingerprint of the stat it trusts for the host file (see
/// [`stat_print`]); otherwise only its header (its trusted stats were shown to the caller while
/// it loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// Stat of the archive file the records were taken from.
    pub archive: StatKey,
    pub archive_sha256: String,
    pub archive_bytes: u64,
    pub vouched: bool,
    pub records: RecordTable,
    pub stat_prints: Vec<u64>,
}

impl Cache {
    /// Loads a cache, showing `each` every record with the stat it trusts for the host file;
    /// anything unreadable, damaged or of another version gives `None` (and what `each` was
    /// shown is void). `archive_now`: the stat of the archive being compared.
    pub fn load(
        path: &Path,
        archive_now: Option<&StatKey>,
        each: &mut dyn FnMut(&RecordRef, Option<&StatKey>),
    ) -> Option<Cache> {
        cachefile::decode(std::fs::File::open(path).ok()?, archive_now, each)
    }
}

/// A fingerprint of a trusted stat (or of none): equal stats give equal prints. Used only to
/// tell whether a fresh cache would say the same as the loaded one (a collision could only
/// skip a rewrite; the stats a run trusts are always compared in full).
pub fn stat_print(stat: Option<&StatKey>) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(stat)
}

/// Saves a cache of `count` records (record `i` from `record_of(i)`, borrowed, not copied)
/// for the archive `header` describes, trusting the stat `stat_of(i)` gives: atomically, 0600,
/// not fsynced (it is advisory and rebuilt when lost).
pub fn save<'a>(
    path: &Path,
    header: &Header,
    count: usize,
    record_of: impl Fn(usize) -> Option<RecordRef<'a>>,
    stat_of: impl Fn(usize) -> Option<StatKey>,
) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = crate::fs::atomic::temp_in(dir)?;
    cachefile::encode(temp.as_file_mut(), header, count, record_of, stat_of)?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// The stat a cache may vouch for: none for a file modified within the racy window before
/// `run_start` (a later write in the same timestamp tick would go unseen).
pub fn trusted_stat(stat: &FileStat, run_start: i64) -> Option<StatKey> {
    (stat.mtime < run_start - RACY_WINDOW_SECS).then(|| stat.key())
}

/// The cache file for a root and a bank.
pub fn cache_path(run_dir: &Path, root: &Path, bank: &Path) -> PathBuf {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mut hasher = Sha256::new();
    hasher.update(canonical(root).as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(canonical(bank).as_os_str().as_encoded_bytes());
    let key = hex(&hasher.finalize()[..8]);
    run_dir.join(format!("cache-{key}.bin"))
}
