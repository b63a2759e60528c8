//! The [`super::Placer`]'s directory descriptors between files: the last directory a file was
//! staged in, and in batched mode the filesystems to flush at the end.
//!
//! Archives are sorted, so the next file usually goes beside the last one: its directory's
//! descriptor is reused instead of walking from the root again. It is the directory itself,
//! opened by a link-safe walk of this run, not a path, so a link planted after it was opened is
//! not followed either. With batching ([`DirCache::batched`]) nothing is fsynced as it is
//! written; every directory met first is noted in a [`SyncBatch`] (one per filesystem) before
//! anything is written in it, and [`DirCache::flush`] makes all of it durable at once.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use rustix::fs as rfs;

use crate::fs::durable::SyncBatch;

/// The last directory staged in, and the filesystems written when batched.
#[derive(Debug)]
pub struct DirCache {
    /// With batched durability: the filesystems written, flushed by [`DirCache::flush`];
    /// without it every file and its directory are fsynced as they are placed.
    batch: Option<RefCell<SyncBatch>>,
    /// The directory the last file was staged in: its root-relative path and descriptor.
    last_dir: RefCell<Option<(String, Rc<OwnedFd>)>>,
}

impl DirCache {
    /// Every file and directory change is fsynced as it is made.
    pub fn per_file() -> DirCache {
        DirCache {
            batch: None,
            last_dir: RefCell::new(None),
        }
    }

    /// Nothing is fsynced until [`DirCache::flush`].
    pub fn batched() -> DirCache {
        DirCache {
            batch: Some(RefCell::new(SyncBatch::default())),
            ..DirCache::per_file()
        }
    }

    pub fn is_batched(&self) -> bool {
        self.batch.is_some()
    }

    /// Remembers the filesystem of `dir` for [`DirCache::flush`], before anything is written
    /// in it (nothing to do without batching).
    pub fn note(&self, dir: &OwnedFd) -> io::Result<()> {
        match &self.batch {
            Some(batch) => batch.borrow_mut().note(dir),
            None => Ok(()),
        }
    }

    /// Makes a change of `dir`'s entries durable now, or leaves it to the flush when batched.
    pub fn sync_dir(&self, dir: &OwnedFd) -> rustix::io::Result<()> {
        match self.batch {
            Some(_) => Ok(()),
            None => rfs::fsync(dir),
        }
    }

    /// Flushes every noted filesystem (no-op without batching, where each file already is).
    pub fn flush(&self) -> io::Result<()> {
        match &self.batch {
            Some(batch) => batch.borrow().flush(),
            None => Ok(()),
        }
    }

    /// The descriptor of the last directory when it is `key`.
    pub fn last(&self, key: &str) -> Option<Rc<OwnedFd>> {
        match &*self.last_dir.borrow() {
            Some((last, fd)) if last == key => Some(Rc::clone(fd)),
            _ => None,
        }
    }

    /// Keeps `dir` (at `key`) as the last directory and gives it back shared.
    pub fn remember(&self, key: String, dir: OwnedFd) -> Rc<OwnedFd> {
        let dir = Rc::new(dir);
        *self.last_dir.borrow_mut() = Some((key, Rc::clone(&dir)));
        dir
    }

    /// Drops the last directory (its path may be removed next).
    pub fn forget(&self) {
        self.last_dir.borrow_mut().take();
    }
}
