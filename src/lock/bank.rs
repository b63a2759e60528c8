//! The bank locks: statectl's own kernel `flock` per bank, and ESXi's PID-file lock.
//!
//! statectl's lock is a `flock` on a file in the run directory, never on the boot media. Its
//! name is derived from the bank's canonical path, so every way of naming a bank meets the same
//! lock. The kernel drops it when its holder dies, so a killed run never blocks the next one.
//!
//! ESXi's own tools (`backup.sh`, `BootModuleConfig.sh`) lock a bank with a PID file
//! `/tmp/<bank name>.lck`; [`esxi`] takes the same file under the root (`<root>/tmp/...`), so
//! statectl and those tools never write one bank at once.
//!
//! # Order (so that no two runs deadlock)
//! A writer takes, in this order: the root lock (when it needs one), then the statectl lock of
//! each bank it touches, the bootbank's before the altbootbank's (any other bank, `--bank DIR`,
//! after them by path), then ESXi's PID locks in the same bank order. [`lock_for_writing`] does
//! the last two steps in one call; it is what every writer of a bank uses. Dropping the
//! returned [`WriteLocks`] releases the PID locks first, then the `flock`s.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::error::Error;
use crate::host::Host;

use super::esxi;

/// How long commands without a `--wait` flag (install, export) wait for a run holding the lock.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A held bank lock; dropping it releases the lock.
#[derive(Debug)]
pub struct BankLock {
    _file: File,
    pub bank: PathBuf,
}

/// Locks every bank in `banks` (in a fixed order, so two runs cannot deadlock), waiting up to
/// `wait` in total.
pub fn lock_banks(run_dir: &Path, banks: &[&Path], wait: Duration) -> Result<Vec<BankLock>> {
    let mut canonical = banks
        .iter()
        .map(|bank| canonical_bank(bank))
        .collect::<Result<Vec<_>>>()?;
    canonical.sort();
    canonical.dedup();
    let deadline = Instant::now() + wait;
    canonical
        .into_iter()
        .map(|bank| lock_one(run_dir, bank, deadline, wait))
        .collect()
}

fn canonical_bank(bank: &Path) -> Result<PathBuf> {
    bank.canonicalize().with_context(|| {
        format!(
            "bank `{}` does not exist or cannot be opened",
            bank.display()
        )
    })
}

/// Every lock a writer of banks holds. Fields drop in order: ESXi's PID files go first.
#[derive(Debug)]
pub struct WriteLocks {
    _esxi: Vec<esxi::EsxiLock>,
    _banks: Vec<BankLock>,
    /// What was found at ESXi's PID lock names instead of a lock (removed), for a warning.
    pub warnings: Vec<String>,
}

/// Takes statectl's lock and ESXi's PID lock of every bank in `banks`, in the documented
/// order, waiting up to `wait` in total (then a typed busy error: exit 4).
pub fn lock_for_writing(host: &Host, banks: &[&Path], wait: Duration) -> Result<WriteLocks> {
    let deadline = Instant::now() + wait;
    let run_dir = host.run_dir()?.to_path_buf();
    let known = [&host.bootbank, &host.altbootbank].map(|bank| bank.canonicalize().ok());
    let mut ordered = Vec::new();
    for bank in banks {
        let canonical = canonical_bank(bank)?;
        let rank = known
            .iter()
            .position(|k| k.as_ref() == Some(&canonical))
            .unwrap_or(known.len());
        ordered.push((rank, canonical, bank.to_path_buf()));
    }
    ordered.sort();
    ordered.dedup_by(|a, b| a.1 == b.1);
    let mut held = Vec::new();
    for (_, canonical, _) in &ordered {
        held.push(lock_one(&run_dir, canonical.clone(), deadline, wait)?);
    }
    let mut pid_locks = Vec::new();
    let mut warnings = Vec::new();
    for (_, _, bank) in &ordered {
        if let Some(lock) = esxi::lock(&host.root, bank, deadline, wait, &mut warnings)? {
            pid_locks.push(lock);
        }
    }
    Ok(WriteLocks {
        _esxi: pid_locks,
        _banks: held,
        warnings,
    })
}

/// The lock file of a bank (by canonical path).
pub fn lock_path(run_dir: &Path, canonical_bank: &Path) -> PathBuf {
    super::file::keyed_path(run_dir, "bank", canonical_bank)
}

fn lock_one(run_dir: &Path, bank: PathBuf, deadline: Instant, wait: Duration) -> Result<BankLock> {
    match super::file::take(&lock_path(run_dir, &bank), false, deadline)? {
        Some(file) => Ok(BankLock { _file: file, bank }),
        None => Err(Error::LockBusy {
            bank,
            waited_secs: wait.as_secs(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_times_out_and_a_released_lock_is_free() {
        let run = tempfile::tempdir().unwrap();
        let bank = tempfile::tempdir().unwrap();
        let held = lock_banks(run.path(), &[bank.path()], Duration::ZERO).unwrap();
        let err = lock_banks(run.path(), &[bank.path()], Duration::from_millis(50)).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Error>(),
            Some(Error::LockBusy { .. })
        ));
        drop(held);
        assert!(lock_banks(run.path(), &[bank.path()], Duration::ZERO).is_ok());
    }
}
