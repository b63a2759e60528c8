//! `FileTable`: the files a run persists, in compact form, from the selection walk to the
//! archive writer and the stat cache.
//!
//! At 100,000 files the per-file cost is what matters: one fixed-size row (the stat fields a
//! run compares and records, the content digest, where to read the file) and the name in one
//! arena string, about 100 bytes plus the name. Rows are pushed in walk order and then sorted
//! in place by path (the names stay where they are, so sorting copies nothing but rows); the
//! same table then carries each file's current sha256 (detection fills it in, from the stat
//! cache or by hashing) and, once the writer has read a file, the stat it was read under.
//!
//! A snapshot row (ConfigStore's, `detect::configstore`) is *pinned*: its stat is the live
//! store's, not the private file it is read from, and the writer records that stat.
//!
//! A file is read from the table's root joined with its path, unless it was reached through a
//! directory symlink (its physical path then differs) or lives outside any root (`pack`, an
//! undo archive): such a file keeps its own location. Either way it is opened through the
//! in-root walk ([`FileTable::open`]), never by a plain path the kernel would resolve.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::stat::FileStat;
use super::table::{RecordRef, Records};
use crate::fs::hostfile::{Identity, RootReader};

const NO_LOCATION: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Row {
    name_start: u32,
    name_len: u32,
    /// Index into `locations`, or [`NO_LOCATION`]: read from the root joined with the name.
    location: u32,
    branched: bool,
    /// The stat is not the read file's own: the writer records it and keeps it.
    pinned: bool,
    /// `sha256` holds the content digest (from the cache, a hash or the writer).
    hashed: bool,
    stat: FileStat,
    sha256: [u8; 32],
}

/// Persisted files: fixed-size rows, one arena of names, the few locations that differ.
#[derive(Debug, Clone, Default)]
pub struct FileTable {
    root: PathBuf,
    names: String,
    locations: Vec<PathBuf>,
    rows: Vec<Row>,
}

impl FileTable {
    /// An empty table of files under `root`.
    pub fn new(root: &Path) -> FileTable {
        FileTable {
            root: root.to_path_buf(),
            ..FileTable::default()
        }
    }

    /// Appends the file `path` with the stat it was seen with; `location` is where to read it
    /// when that is not the root joined with `path`.
    pub fn push(
        &mut self,
        path: &str,
        location: Option<PathBuf>,
        meta: &Metadata,
        branched: bool,
    ) -> Result<()> {
        self.push_stat(path, location, FileStat::of(meta), branched)
    }

    fn push_stat(
        &mut self,
        path: &str,
        location: Option<PathBuf>,
        stat: FileStat,
        branched: bool,
    ) -> Result<()> {
        let (Ok(name_start), Ok(name_len)) =
            (u32::try_from(self.names.len()), u32::try_from(path.len()))
        else {
            bail!("the selection's names pass 4 GiB; exclude files (statectl.toml `exclude`)");
        };
        if name_start.checked_add(name_len).is_none() {
            bail!("the selection's names pass 4 GiB; exclude files (statectl.toml `exclude`)");
        }
        let location = match location {
            Some(location) => {
                self.locations.push(location);
                (self.locations.len() - 1) as u32
            }
            None => NO_LOCATION,
        };
        self.names.push_str(path);
        self.rows.push(Row {
            name_start,
            name_len,
            location,
            branched,
            pinned: false,
            hashed: false,
            stat,
            sha256: [0; 32],
        });
        Ok(())
    }

    /// Appends a file not stat'ed yet (the writer stats it as it reads it), read from
    /// `location`.
    pub fn push_unread(&mut self, path: &str, location: PathBuf) -> Result<()> {
        self.push_stat(path, Some(location), FileStat::default(), false)
    }

    /// Appends a pinned file: archived from `location` with `stat` as its record (the size
    /// must be that of the file at `location`).
    pub fn push_pinned(&mut self, path: &str, location: PathBuf, stat: FileStat) -> Result<()> {
        self.push_stat(path, Some(location), stat, false)?;
        if let Some(row) = self.rows.last_mut() {
            row.pinned = true;
        }
        Ok(())
    }

    /// True when file `i`'s stat is pinned (see [`FileTable::push_pinned`]).
    pub fn pinned(&self, i: usize) -> bool {
        self.rows[i].pinned
    }

    /// Appends a file not stat'ed yet, read from the table's root joined with `path` (no
    /// location kept: at 100,000 long paths a copy of each would be tens of MiB).
    pub fn push_unread_here(&mut self, path: &str) -> Result<()> {
        self.push_stat(path, None, FileStat::default(), false)
    }

    /// Sorts the files by path, byte-wise; where a path was pushed twice the later push wins.
    pub fn sort_by_path(&mut self) {
        let names = &self.names;
        let name = |row: &Row| {
            let start = row.name_start as usize;
            &names.as_bytes()[start..start + row.name_len as usize]
        };
        // Later pushes have later names in the arena: they sort first among equals and stay.
        self.rows
            .sort_unstable_by(|a, b| name(a).cmp(name(b)).then(b.name_start.cmp(&a.name_start)));
        self.rows.dedup_by(|later, kept| name(later) == name(kept));
    }

    /// Keeps only the files whose path `keep` is true for, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let names = &self.names;
        self.rows.retain(|row| {
            let start = row.name_start as usize;
            keep(&names[start..start + row.name_len as usize])
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The root-relative path of file `i` (its member name in an archive).
    pub fn path(&self, i: usize) -> &str {
        let row = &self.rows[i];
        let start = row.name_start as usize;
        &self.names[start..start + row.name_len as usize]
    }

    /// Where file `i` is read from.
    pub fn location(&self, i: usize) -> PathBuf {
        match self.rows[i].location {
            NO_LOCATION => self.root.join(self.path(i)),
            at => self.root.join(&self.locations[at as usize]),
        }
    }

    /// Where file `i` is read from, relative to the table's root (the in-root walk's path).
    pub fn read_path(&self, i: usize) -> PathBuf {
        match self.rows[i].location {
            NO_LOCATION => PathBuf::from(self.path(i)),
            at => {
                let location = &self.locations[at as usize];
                let rel = location.strip_prefix(&self.root).unwrap_or(location);
                rel.to_path_buf()
            }
        }
    }

    /// Opens file `i` through the in-root walk of `reader` (over this table's root); a file
    /// the selection stat'ed must still be that file (same device and inode).
    pub fn open(&self, reader: &RootReader, i: usize) -> Result<(File, Metadata)> {
        if self.rows[i].pinned {
            // A pinned file is statectl's own snapshot in its private run directory, outside
            // the root: opened where it is, and it must still be a regular file.
            let path = self.location(i);
            return crate::fs::hostfile::open_regular(&path)?
                .with_context(|| format!("`{}` does not exist", path.display()));
        }
        let rel = self.read_path(i);
        let stat = &self.rows[i].stat;
        if stat.ino == 0 {
            // Not stat'ed yet (pack, an undo archive): the writer stats what it opens.
            return reader.open_file(&rel)?.with_context(|| {
                format!("`{}` does not exist", reader.root().join(&rel).display())
            });
        }
        let seen = Identity {
            dev: stat.dev,
            ino: stat.ino,
        };
        reader.open_selected(&rel, seen)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stat(&self, i: usize) -> &FileStat {
        &self.rows[i].stat
    }

    /// True when file `i` has a `.#` sibling (it was modified since boot).
    pub fn branched(&self, i: usize) -> bool {
        self.rows[i].branched
    }

    /// The content digest of file `i`, once known.
    pub fn sha256(&self, i: usize) -> Option<[u8; 32]> {
        let row = &self.rows[i];
        row.hashed.then_some(row.sha256)
    }

    /// Records the content digest of file `i`.
    pub fn set_sha256(&mut self, i: usize, sha256: [u8; 32]) {
        let row = &mut self.rows[i];
        row.sha256 = sha256;
        row.hashed = true;
    }

    /// Records what the writer read of file `i`: the stat it was read under (a pinned file
    /// keeps its own) and its digest.
    pub fn set_read(&mut self, i: usize, meta: &Metadata, sha256: [u8; 32]) {
        if !self.rows[i].pinned {
            self.rows[i].stat = FileStat::of(meta);
        }
        self.set_sha256(i, sha256);
    }

    /// Forgets every digest (the stat cache that gave some of them turned out damaged).
    pub fn forget_digests(&mut self) {
        self.rows.iter_mut().for_each(|row| row.hashed = false);
    }

    /// The index of the file with `path` (the table is sorted by path).
    pub fn find(&self, path: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The paths of the files with a `.#` sibling, in order.
    pub fn branched_paths(&self) -> impl Iterator<Item = &str> + '_ {
        self.indices()
            .filter(|&i| self.branched(i))
            .map(|i| self.path(i))
    }

    /// Every file's index, in path order.
    pub fn indices(&self) -> std::ops::Range<usize> {
        0..self.len()
    }
}

impl Records for FileTable {
    fn count(&self) -> usize {
        self.len()
    }

    /// File `i` as an archive records it. Its digest is all zero bytes while unknown
    /// ([`FileTable::sha256`] says which): detection leaves it unknown where the metadata
    /// alone decides, the writer always records it.
    fn record(&self, i: usize) -> RecordRef<'_> {
        let row = &self.rows[i];
        RecordRef {
            path: self.path(i),
            sha256: row.sha256,
            size: row.stat.size,
            mode: row.stat.mode & 0o7777,
            uid: row.stat.uid,
            gid: row.stat.gid,
            mtime: row.stat.mtime.max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_keeps_the_later_of_two_pushes_and_locations_follow_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let meta_a = std::fs::metadata(dir.path()).unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        let meta_b = std::fs::metadata(dir.path().join("f")).unwrap();
        let mut table = FileTable::new(Path::new("/r"));
        table.push("etc/b", None, &meta_a, false).unwrap();
        table
            .push("etc/a", Some(PathBuf::from("var/a")), &meta_a, true)
            .unwrap();
        table.push("etc/b", None, &meta_b, false).unwrap();
        table
            .push("etc/a.d", Some("/abs/x".into()), &meta_a, false)
            .unwrap();
        table.sort_by_path();
        let paths: Vec<&str> = table.indices().map(|i| table.path(i)).collect();
        assert_eq!(paths, ["etc/a", "etc/a.d", "etc/b"]);
        assert_eq!(table.location(0), Path::new("/r/var/a"));
        assert_eq!(table.location(1), Path::new("/abs/x"));
        assert_eq!(table.location(2), Path::new("/r/etc/b"));
        assert_eq!(table.stat(2).size, 1, "the later push of etc/b wins");
        assert!(table.branched(0) && !table.branched(2));
        assert_eq!(table.find("etc/b"), Some(2));
        assert_eq!(table.find("etc/c"), None);
        table.retain(|path| path != "etc/a.d");
        assert_eq!(table.len(), 2);
        assert_eq!(table.sha256(1), None);
        table.set_sha256(1, [7; 32]);
        assert_eq!(table.record(1).sha256, [7; 32]);
        table.forget_digests();
        assert_eq!(table.sha256(1), None);
    }
}
