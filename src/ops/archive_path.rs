//! The archive a command works on when none is named (the next-boot bank's `state.tgz`), and
//! how an archive's path is shown.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::bank::{next_boot, read_banks};
use crate::host::Host;

/// The `state.tgz` of the bank that boots next.
pub fn default_archive(host: &Host) -> Result<PathBuf> {
    let banks = read_banks(host);
    match next_boot(&banks) {
        Some(name) => Ok(banks.get(name).state_archive()),
        None => bail!(
            "no eligible boot bank to take the archive from (bootbank `{}`: {}; altbootbank `{}`: {}); \
             name the archive explicitly",
            banks.bootbank.path.display(),
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.path.display(),
            banks.altbootbank.eligibility().err().unwrap_or_default(),
        ),
    }
}

/// The named archive, else the default one.
pub fn archive_or_default(host: &Host, named: Option<&PathBuf>) -> Result<PathBuf> {
    match named {
        Some(path) => Ok(path.clone()),
        None => default_archive(host),
    }
}

/// The path printed for an archive: absolute where it can be made so.
pub fn shown(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
