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
//!
//! `/tmp` is writable by every user, so only a regular file owned by root (or by this run's
//! user) counts as a lock, and it is opened without blocking or following a link and read with
//! a bound: a FIFO, link, device, directory or another user's file planted there is no holder.
//! It is removed like a stale lock (an empty directory too); one that cannot be removed (a
//! directory with files in it) stops the run at once with exit 1 naming it, never after a wait.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::error::Error;

const POLL: Duration = Duration::from_millis(50);
/// How long an empty PID file counts as a holder still writing its PID.
const EMPTY_GRACE: Duration = Duration::from_secs(3);
/// The most of a PID file read (a PID and a newline need a dozen bytes).
const MAX_PID_FILE: u64 = 64;

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

/// Takes ESXi's lock of `bank`, waiting for a live holder until `deadline`; what was found
/// there instead of a lock (and removed) goes to `warnings`.
pub fn lock(
    root: &Path,
    bank: &Path,
    deadline: Instant,
    wait: Duration,
    warnings: &mut Vec<String>,
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
            Holder::NotALock(what) => {
                remove_planted(&path, &what)?;
                warnings.push(format!(
                    "ESXi's bank lock `{}` was {what}, not a PID file (planted?); removed",
                    path.display()
                ));
            }
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
    /// Something that is not ESXi's lock (what it is, for the message).
    NotALock(String),
}

fn holder(path: &Path, own: u32) -> Holder {
    let text = match read_lock(path) {
        Ok(text) => text,
        Err(what) => return Holder::NotALock(what),
    };
    let pid = text.and_then(|text| text.trim().parse().ok().filter(|&pid| pid > 0));
    match pid {
        Some(pid) if pid != own && crate::process::is_alive(pid) => Holder::Live(pid),
        Some(_) => Holder::Stale,
        None if recently_written(path) => Holder::Live(0),
        None => Holder::Stale,
    }
}

/// The PID file's text (`None`: gone or unreadable), or what is there instead of a lock: only
/// a regular file owned by root or by us counts, opened without blocking or following a link.
fn read_lock(path: &Path) -> Result<Option<String>, String> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Err("a symlink".into()),
        Err(_) => return Ok(None),
    };
    let Ok(meta) = file.metadata() else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(crate::fs::hostfile::kind_of(&meta).into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!("a file of uid {} (not root's)", meta.uid()));
    }
    let mut text = String::new();
    let _ = file.take(MAX_PID_FILE).read_to_string(&mut text);
    Ok(Some(text))
}

/// Removes what was planted at the PID file's name instead of a lock, or stops the run.
fn remove_planted(path: &Path, what: &str) -> Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir(path),
        Ok(_) => fs::remove_file(path),
        Err(err) => Err(err),
    };
    match removed {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| {
            format!(
                "ESXi's bank lock `{}` is {what}, not a PID file, and cannot be removed; \
                 remove it and run again",
                path.display()
            )
        }),
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    read_lock(path)
        .ok()??
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
        let held = lock(
            root.path(),
            &bank,
            deadline,
            Duration::ZERO,
            &mut Vec::new(),
        )
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
        assert!(lock(
            root.path(),
            &bank,
            Instant::now(),
            Duration::ZERO,
            &mut Vec::new()
        )
        .unwrap()
        .is_none());
        fs::create_dir(root.path().join("tmp")).unwrap();
        let path = lock_path(root.path(), &bank).unwrap();
        fs::write(&path, "1\n").unwrap();
        let err = lock(
            root.path(),
            &bank,
            Instant::now(),
            Duration::ZERO,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Error>(),
            Some(Error::EsxiLockBusy { pid: 1, .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn a_fifo_or_an_empty_directory_is_no_holder_and_is_removed() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("tmp")).unwrap();
        let bank = root.path().join("bootbank");
        let path = lock_path(root.path(), &bank).unwrap();
        let fifo = rustix::fs::Mode::from_raw_mode(0o644);
        rustix::fs::mkfifoat(rustix::fs::CWD, &path, fifo).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        let held = lock(
            root.path(),
            &bank,
            deadline,
            Duration::from_secs(60),
            &mut Vec::new(),
        );
        assert!(held.unwrap().is_some());
        assert!(started.elapsed() < Duration::from_secs(5));
        fs::create_dir(&path).unwrap();
        assert!(lock(
            root.path(),
            &bank,
            deadline,
            Duration::ZERO,
            &mut Vec::new()
        )
        .unwrap()
        .is_some());
        fs::create_dir_all(path.join("full")).unwrap();
        let err = lock(
            root.path(),
            &bank,
            deadline,
            Duration::ZERO,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("a directory, not a PID file"),
            "{err:#}"
        );
    }
}
