//! A pending install: what `install` put into a bank, remembered until the host reboots.
//!
//! The marker is a small file in the RAM-backed run directory (a reboot clears it; a test
//! "reboots" by removing it), one per bank, keyed like the stat cache by root and bank. It holds
//! the sha256 of the archive installed and the path of the archive it replaced. While it names
//! the archive that is in the bank, `backup` leaves that bank alone (the running state would
//! otherwise be written over the state the admin installed for the next boot); `backup --force`
//! writes it and clears the marker. A marker whose sha256 no longer matches the bank's archive
//! (someone wrote the bank since) is cleared too: it no longer stands for anything.

use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::detect::Archived;
use crate::records::hex;

/// Largest marker read (it holds two lines).
const MAX_MARKER: u64 = 16 << 10;

/// What a marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub marker: PathBuf,
    /// sha256 of the archive installed.
    pub sha256: String,
    /// The archive it replaced, kept for `statectl install` to put back.
    pub replaced: Option<PathBuf>,
}

/// The marker file of `bank` under `root`.
pub fn marker_path(run_dir: &Path, root: &Path, bank: &Path) -> PathBuf {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let mut hasher = Sha256::new();
    hasher.update(canonical(root).as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(canonical(bank).as_os_str().as_encoded_bytes());
    run_dir.join(format!("pending-install-{}", hex(&hasher.finalize()[..8])))
}

/// Remembers that the archive of sha256 `sha256` was installed into `bank`.
pub fn remember(
    run_dir: &Path,
    root: &Path,
    bank: &Path,
    sha256: &str,
    replaced: Option<&Path>,
) -> Result<PathBuf> {
    let marker = marker_path(run_dir, root, bank);
    let replaced = replaced
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let text = format!("sha256={sha256}\nreplaced={replaced}\n");
    crate::fs::atomic::write_atomically(&marker, text.as_bytes(), 0o600)?;
    Ok(marker)
}

/// The pending install of `bank`, if a marker names one (an unreadable marker counts as
/// none: it is advisory, as the cache is).
pub fn pending(run_dir: &Path, root: &Path, bank: &Path) -> Option<Pending> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = marker_path(run_dir, root, bank);
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&marker)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?;
    let mut text = String::new();
    file.take(MAX_MARKER).read_to_string(&mut text).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some(Pending {
        sha256: field("sha256")?,
        replaced: field("replaced")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        marker,
    })
}

/// The pending install of `bank`, while its marker names the archive that is there
/// (`archived`, as detection found it); a marker that names another archive (the bank was
/// written since) is cleared.
pub fn standing(run_dir: &Path, root: &Path, bank: &Path, archived: &Archived) -> Option<Pending> {
    let pending = pending(run_dir, root, bank)?;
    match archived {
        Archived::Present { sha256, .. } if *sha256 == pending.sha256 => Some(pending),
        _ => {
            clear(&pending);
            None
        }
    }
}

/// Clears the marker (advisory: a marker that cannot be removed is cleared by the next run
/// that sees it stale, or by the reboot).
pub fn clear(pending: &Pending) {
    let _ = std::fs::remove_file(&pending.marker);
}

/// The message of a bank left alone for a pending install.
pub fn left_alone(bank: &Path) -> String {
    format!(
        "bank `{}` holds an archive installed for the next boot (a pending install); its \
         state.tgz is not overwritten until the host reboots (backup --force overwrites it)",
        bank.display()
    )
}
