//! The placer's temp files beside their destinations: created `O_EXCL | O_NOFOLLOW` 0600 with
//! this run's name (`.statectl-<pid>-N.tmp`, [`crate::atomic`]), and the stale ones a killed
//! run left in a directory removed before the first write into it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a new temp file in `dir`; returns its name and descriptor.
pub fn create_temp(dir: &OwnedFd) -> io::Result<(String, OwnedFd)> {
    // The pid in the prefix is read once, not for every file.
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(crate::atomic::temp_prefix);
    loop {
        let name = format!(
            "{}{}{}",
            prefix,
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::atomic::TEMP_SUFFIX
        );
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(dir, name.as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Removes the temp files of runs no longer alive from the open directory `dir` (shown as
/// `shown` in messages).
pub fn remove_stale(dir: &OwnedFd, shown: &Path) -> Result<()> {
    let listing = rfs::Dir::read_from(dir)
        .map_err(io::Error::from)
        .with_context(|| format!("cannot list `{}`", shown.display()))?;
    for entry in listing {
        let entry = entry
            .map_err(io::Error::from)
            .with_context(|| format!("cannot list `{}`", shown.display()))?;
        let name = entry.file_name().to_string_lossy();
        if crate::atomic::is_temp_name(&name) && !crate::atomic::temp_in_use(&name) {
            match rfs::unlinkat(dir, entry.file_name(), rfs::AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(err) => {
                    return Err(io::Error::from(err)).with_context(|| {
                        format!("cannot remove stale temp file `{}/{name}`", shown.display())
                    })
                }
            }
        }
    }
    Ok(())
}
