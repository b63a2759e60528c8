//! Recovery from a replace that a crash cut in half on a filesystem whose rename is not atomic.
//!
//! On FAT (fusefat, measured; and other FAT drivers that rename over a file by deleting the
//! target's directory entry and then writing the new one) a crash between those two directory
//! writes leaves the bank without `state.tgz` while the new, fsynced archive is still there under
//! its temp name. Deleting that temp as stale would lose the only archive, so before stale temps
//! are removed, a bank with no `state.tgz` gets its newest temp file that verifies as a complete
//! archive (both gzip layers drained, CRCs and lengths checked) renamed into place.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{verify_archive, Limits, STATE_NAME};
use crate::fs::atomic::{sync_dir, TEMP_PREFIX, TEMP_SUFFIX};

/// When `bank` has no `state.tgz`, renames the newest complete archive among its temp files into
/// place and returns its old path; otherwise does nothing (and writes nothing).
pub fn recover_state(bank: &Path, limits: &Limits) -> Result<Option<PathBuf>> {
    let target = bank.join(STATE_NAME);
    if target.symlink_metadata().is_ok() {
        return Ok(None);
    }
    let Ok(listing) = std::fs::read_dir(bank) else {
        return Ok(None);
    };
    let mut temps: Vec<(std::time::SystemTime, PathBuf)> = listing
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
        })
        .filter_map(|entry| {
            let meta = entry.metadata().ok().filter(|m| m.is_file())?;
            Some((meta.modified().ok()?, entry.path()))
        })
        .collect();
    temps.sort();
    for (_, temp) in temps.into_iter().rev() {
        if verify_archive(&temp, limits).ok {
            std::fs::rename(&temp, &target).with_context(|| {
                format!(
                    "cannot recover `{}` from `{}`",
                    target.display(),
                    temp.display()
                )
            })?;
            sync_dir(bank)?;
            return Ok(Some(temp));
        }
    }
    Ok(None)
}
