//! The `bank` commands as library calls: status, verify, set-next, sync and the monitoring
//! check. Each returns a report; none prints.

pub mod check;
pub mod set_next;
pub mod status;
pub mod sync;
pub mod verify;

use std::path::Path;

use anyhow::{Context, Result};

use crate::bank::{read_banks, Banks};
use crate::host::Host;

/// Reads both banks, failing only when a bank directory itself cannot be listed.
pub fn readable_banks(host: &Host) -> Result<Banks> {
    for dir in [&host.bootbank, &host.altbootbank] {
        check_dir(dir)?;
    }
    Ok(read_banks(host))
}

fn check_dir(dir: &Path) -> Result<()> {
    std::fs::read_dir(dir).map(drop).with_context(|| {
        format!(
            "cannot read bank directory `{}`; check --bootbank/--altbootbank",
            dir.display()
        )
    })
}
