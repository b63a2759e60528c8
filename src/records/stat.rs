//! The stat of a host file as a run sees it: [`FileStat`], the fields a run compares, records
//! or restores, and [`StatKey`], the fields that change whenever the content may have (what the
//! stat cache keys a file's content on).

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// The stat fields of a persisted file that a run compares, records or restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub mtime_ns: u32,
    pub ctime_ns: u32,
    /// The full `st_mode` (type bits included).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl FileStat {
    pub fn of(meta: &Metadata) -> FileStat {
        FileStat {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            ctime: meta.ctime(),
            mtime_ns: meta.mtime_nsec() as u32,
            ctime_ns: meta.ctime_nsec() as u32,
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }

    /// The fields the stat cache keys a file's content on.
    pub fn key(&self) -> StatKey {
        StatKey::from_fields([
            self.dev,
            self.ino,
            self.size,
            self.mtime as u64,
            i64::from(self.mtime_ns) as u64,
            self.ctime as u64,
            i64::from(self.ctime_ns) as u64,
        ])
    }
}

/// The stat fields that change whenever a file's content may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ctime: i64,
    ctime_ns: i64,
}

impl StatKey {
    pub fn of(meta: &Metadata) -> StatKey {
        StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
        }
    }

    /// Number of fields in [`StatKey::fields`].
    pub const FIELDS: usize = 7;

    /// The fields as raw words, for the cache file.
    pub fn fields(&self) -> [u64; Self::FIELDS] {
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime as u64,
            self.mtime_ns as u64,
            self.ctime as u64,
            self.ctime_ns as u64,
        ]
    }

    /// The inverse of [`StatKey::fields`].
    pub fn from_fields(f: [u64; Self::FIELDS]) -> StatKey {
        StatKey {
            dev: f[0],
            ino: f[1],
            size: f[2],
            mtime: f[3] as i64,
            mtime_ns: f[4] as i64,
            ctime: f[5] as i64,
            ctime_ns: f[6] as i64,
        }
    }
}
