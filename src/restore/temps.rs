//! The placer's temp files beside their destinations: created `O_EXCL | O_NOFOLLOW` 0600 with
//! this run's name (`.statectl-<pid>-N.tmp`, [`crate::fs::atomic`]), and the stale ones a killed
//! run left in a directory removed before the first write into it. A temp file is known by its
//! number `N` ([`TempId`]: 8 bytes, where its name would cost a string per staged file).

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One temp file of this run: its name is `.statectl-<pid>-<number>.tmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TempId(u64);

impl TempId {
    /// The temp file's name in its directory.
    pub fn name(self) -> String {
        // The pid in the prefix is read once, not for every file.
        static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let prefix = PREFIX.get_or_init(crate::fs::atomic::temp_prefix);
        format!("{prefix}{}{}", self.0, crate::fs::atomic::TEMP_SUFFIX)
    }
}

/// The temp files of files staged one after another, in staging order. Their numbers are
/// consecutive unless another temp file took one in between (or a name was taken), so only
/// where a run of numbers starts is kept: no memory per file.
#[derive(Debug, Default)]
pub struct TempSeq {
    len: usize,
    /// (position in the sequence, number) where each run starts.
    runs: Vec<(usize, u64)>,
}

impl TempSeq {
    pub fn push(&mut self, temp: TempId) {
        let next_in_run = self
            .runs
            .last()
            .map(|&(at, first)| first + (self.len - at) as u64);
        if next_in_run != Some(temp.0) {
            self.runs.push((self.len, temp.0));
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every temp file, in staging order.
    pub fn iter(&self) -> impl Iterator<Item = TempId> + '_ {
        self.runs.iter().enumerate().flat_map(|(i, &(at, first))| {
            let end = self.runs.get(i + 1).map_or(self.len, |next| next.0);
            (0..(end - at) as u64).map(move |offset| TempId(first + offset))
        })
    }
}

/// Creates a new temp file in `dir`; returns its id and descriptor.
pub fn create_temp(dir: &OwnedFd) -> io::Result<(TempId, OwnedFd)> {
    loop {
        let id = TempId(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(dir, id.name().as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((id, fd)),
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
        if crate::fs::atomic::is_temp_name(&name) && !crate::fs::atomic::temp_in_use(&name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_gives_back_every_number_in_order_keeping_only_its_runs() {
        let numbers = [7, 8, 9, 12, 13, 3, 4];
        let mut seq = TempSeq::default();
        for n in numbers {
            seq.push(TempId(n));
        }
        assert_eq!(seq.len(), numbers.len());
        assert_eq!(seq.runs.len(), 3);
        let back: Vec<TempId> = seq.iter().collect();
        assert_eq!(back, numbers.map(TempId));
        assert_eq!(TempSeq::default().iter().count(), 0);
    }
}
