//! The one way statectl takes a lock: a kernel `flock` on a 0600 file in the run directory
//! (opened without following a link), polled until a deadline. The kernel drops it when its
//! holder dies, so a killed run never blocks the next one, and taking it writes nothing to the
//! boot media. Used by the root lock and the bank locks.

use std::fs::{File, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

const POLL: Duration = Duration::from_millis(25);

/// The lock file in `run_dir` for the thing at `canonical` (a canonical path): `{kind}-{key}.lock`,
/// keyed by the first 8 bytes of the path's sha256, so every way of naming it meets one lock.
pub fn keyed_path(run_dir: &Path, kind: &str, canonical: &Path) -> PathBuf {
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    run_dir.join(format!("{kind}-{}.lock", crate::records::hex(&digest[..8])))
}

/// Locks the file at `path` (created when missing), shared or exclusive, retrying until
/// `deadline`; `None` when another holder still has it then.
pub fn take(path: &Path, shared: bool, deadline: Instant) -> Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open lock file `{}`", path.display()))?;
    loop {
        let attempt = match shared {
            true => file.try_lock_shared(),
            false => file.try_lock(),
        };
        match attempt {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(POLL),
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }
}
