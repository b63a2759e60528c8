//! ESXi's own bank lock: the PID file `/tmp/<bank name>.lck` of `backup.sh` and
//! `BootModuleConfig.sh` (ESXI.md "How backup.sh writes"), here `<root>/tmp/<bank name>.lck`.
//!
//! The file is created exclusively and holds our PID and a newline. A file naming a live
//! process is a holder: we poll until the deadline, then fail with a typed busy error (exit 4).
//! A file naming a dead process, or one that stayed empty or unreadable for a few seconds, is
//! stale (its holder was killed): it is removed and taken. Dropping the lock removes the file
//! if it still names us, so error paths leave none behind. A root without a `tmp` directory has
//! no ESXi tool running on it (ESXi always has `/tmp`): nothing is taken there, and nothing is
//! created in the root.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::error::Error;

const POLL: Duration = Duration::from_millis(50);
/// How long an empty PID file counts as a holder still writing its PID.
const EMPTY_GRACE: Duration = Duration::from_secs(3);

/// A held ESXi PID lock; dropping it removes the file.
#[derive(Debug)]
pub struct EsxiLock {
    pub path: PathBuf,
    pid: u32,
}

impl Drop for EsxiLock {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(self.pid) {
            // Best effort: a lock file we cannot remove names a dead PID once we exit.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The PID file of `bank` under `root`: `<root>/tmp/<basename of bank>.lck`.
pub fn lock_path(root: &Path, bank: &Path) -> Option<PathBuf> {
    let name = bank.file_name()?.to_string_lossy().into_owned();
    Some(root.join("tmp").join(format!("{name}.lck")))
}

/// Takes ESXi's lock of `bank`, waiting for a live holder until `deadline`.
pub fn lock(
    root: &Path,
    bank: &Path,
    deadline: Instant,
    wait: Duration,
) -> Result<Option<EsxiLock>> {
    let Some(path) = lock_path(root, bank) else {
        return Ok(None);
    };
    if !root.join("tmp").is_dir() {
        return Ok(None);
    }
    let pid = std::process::id();
    loop {
        match create(&path, pid) {
            Ok(()) => return Ok(Some(EsxiLock { path, pid })),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot create ESXi's bank lock `{}`", path.display())
                })
            }
        }
        match holder(&path, pid) {
            Holder::Stale => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| {
                        format!(
                            "cannot remove the stale ESXi bank lock `{}`",
                            path.display()
                        )
                    })
                }
            },
            Holder::Live(holder) if Instant::now() >= deadline => {
                return Err(Error::EsxiLockBusy {
                    lock: path,
                    pid: holder,
                    waited_secs: wait.as_secs(),
                }
                .into())
            }
            Holder::Live(_) => std::thread::sleep(POLL),
        }
    }
}

fn create(path: &Path, pid: u32) -> io::Result<()> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let written = file.write_all(format!("{pid}\n").as_bytes());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

enum Holder {
    Live(u32),
    Stale,
}

fn holder(path: &Path, own: u32) -> Holder {
    match read_pid(path) {
        Some(pid) if pid != own && crate::process::is_alive(pid) => Holder::Live(pid),
        Some(_) => Holder::Stale,
        None if recently_written(path) => Holder::Live(0),
        None => Holder::Stale,
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

fn recently_written(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|mtime| SystemTime::now().duration_since(mtime).ok())
        .is_some_and(|age| age < EMPTY_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_lock_is_broken_and_ours_is_removed_on_drop() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("tmp")).unwrap();
        let bank = root.path().join("bootbank");
        let path = lock_path(root.path(), &bank).unwrap();
        fs::write(&path, "999999999\n").unwrap();
        let deadline = Instant::now();
        let held = lock(root.path(), &bank, deadline, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        drop(held);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_holder_times_out_and_no_tmp_means_no_lock() {
        let root = tempfile::tempdir().unwrap();
        let bank = root.path().join("altbootbank");
        assert!(lock(root.path(), &bank, Instant::now(), Duration::ZERO)
            .unwrap()
            .is_none());
        fs::create_dir(root.path().join("tmp")).unwrap();
        let path = lock_path(root.path(), &bank).unwrap();
        fs::write(&path, "1\n").unwrap();
        let err = lock(root.path(), &bank, Instant::now(), Duration::ZERO).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Error>(),
            Some(Error::EsxiLockBusy { pid: 1, .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
    }
}
