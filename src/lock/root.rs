//! The root lock, first in the one lock order of every writer: root lock, then bank locks.
//!
//! `restore` (and `passwd` when it changes the live `etc/shadow`) write the root and take it
//! exclusively; `backup` reads the root for an archive and takes it shared, so backups of
//! different banks run side by side but none reads a half-restored host. Like the bank lock it
//! is a kernel `flock` ([`super::file`]) on a file in the run directory, named by the root's canonical path: it
//! dies with its holder and writes nothing to the root or the boot media. Taking it before any
//! bank lock, everywhere, means two writers can never wait for each other in a circle.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::error::Error;

/// How a run uses the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootAccess {
    /// Reads it for an archive (backup): shared with other readers.
    Read,
    /// Writes it (restore, passwd's live shadow): alone.
    Write,
}

/// A held root lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RootLock {
    _file: File,
}

/// Locks `root` for `access`, waiting up to `wait` for runs holding it the other way.
pub fn lock_root(
    run_dir: &Path,
    root: &Path,
    access: RootAccess,
    wait: Duration,
) -> Result<RootLock> {
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot open root `{}`; pass --root DIR", root.display()))?;
    let path = super::file::keyed_path(run_dir, "root", &root);
    let deadline = Instant::now() + wait;
    match super::file::take(&path, access == RootAccess::Read, deadline)? {
        Some(file) => Ok(RootLock { _file: file }),
        None => Err(Error::RootBusy {
            root,
            waited_secs: wait.as_secs(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_and_a_writer_is_alone() {
        let run = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let zero = Duration::ZERO;
        let a = lock_root(run.path(), root.path(), RootAccess::Read, zero).unwrap();
        let b = lock_root(run.path(), root.path(), RootAccess::Read, zero).unwrap();
        let err = lock_root(run.path(), root.path(), RootAccess::Write, zero).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Error>(),
            Some(Error::RootBusy { .. })
        ));
        drop((a, b));
        let w = lock_root(run.path(), root.path(), RootAccess::Write, zero).unwrap();
        assert!(lock_root(run.path(), root.path(), RootAccess::Read, zero).is_err());
        drop(w);
    }
}
