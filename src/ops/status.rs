//! `status`: the pending changes against the next-boot bank's archive.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::archive::envelope::probe::{probe, Layout};
use crate::archive::envelope::seal::check_sealable;
use crate::archive::open_archive;

use crate::bank::targets::{alt_role, AltRole, Blacklist};
use crate::bank::{next_boot, read_banks};
use crate::detect::configstore::{SnapshotOptions, REPORT_WAIT};
use crate::detect::{cache::cache_path, detect, Archived, ChangeSet, Detection};
use crate::host::Host;
use crate::ops::backup::leave_out;

/// The outcome of `status`.
#[derive(Debug)]
pub struct StatusReport {
    /// The archive compared against; `None` when no bank is eligible.
    pub archive: Option<PathBuf>,
    /// The archive's encrypted layout (`"none-mode"`, `"tpm"`), `None` when plain or absent.
    pub encrypted: Option<&'static str>,
    /// The archive compared against is the next-boot bank's.
    pub boots_next: bool,
    pub changes: ChangeSet,
    pub warnings: Vec<String>,
    /// Selection notes (a skipped or missing configured path): warnings shown with `-v`.
    pub notes: Vec<String>,
    /// The detection behind it (its changes and notes moved into this report).
    pub detection: Detection,
}

/// Compares the host with the archive `backup` would replace: the bootbank's, or the next-boot
/// bank's when that is a staged upgrade (or manual switch) backup writes too; never a rollback
/// target's, which backup leaves alone.
pub fn status(host: &Host) -> Result<StatusReport> {
    status_against(host, None)
}

/// As [`status`], or against the `named` archive (a `state.tgz` or a bundle, `diff --archive`):
/// read in full (no stat cache), every selected file compared with it.
pub fn status_against(host: &Host, named: Option<&Path>) -> Result<StatusReport> {
    host.check_root()?;
    let rules = host.selection()?;
    let banks = read_banks(host);
    let mut warnings = Vec::new();
    let role = match named {
        Some(_) => AltRole::Fallback,
        None => alt_role(&banks),
    };
    let archive = match named {
        Some(path) => Some(open_archive(path).map(|_| path.to_path_buf())?),
        None => next_boot(&banks).map(|name| match role {
            AltRole::UpgradeStaged | AltRole::ManualSwitch => banks.get(name).state_archive(),
            _ => banks.bootbank.state_archive(),
        }),
    };
    let boots_next = next_boot(&banks)
        .is_some_and(|name| archive.as_deref() == Some(banks.get(name).state_archive().as_path()));
    let cache = match (&archive, host.run_dir(), named) {
        (Some(path), Ok(run), None) => path.parent().map(|bank| cache_path(run, &host.root, bank)),
        _ => None,
    };
    let snapshots = host.run_dir().ok().map(|dir| SnapshotOptions {
        dir: dir.to_path_buf(),
        wait: REPORT_WAIT,
    });
    let mut detection = detect(
        &host.root,
        &rules,
        archive.as_deref(),
        cache.as_deref(),
        &host.limits,
        snapshots.as_ref(),
    )?;
    if archive.is_none() && !detection.current().is_empty() {
        warnings.push("no eligible boot bank: every file counts as added".to_string());
    }
    if matches!(role, AltRole::UpgradeStaged | AltRole::ManualSwitch) {
        // backup leaves ESXi's configblacklist out of a staged upgrade's archive: not pending.
        let (blacklist, warning) = Blacklist::load(&host.root);
        warnings.extend(warning);
        leave_out(&mut detection, &blacklist);
    }
    warnings.extend(detection.stale_manifest.clone());
    let layout = archive.as_deref().map(|path| probe(path, &host.limits));
    if let Archived::Unreadable(reason) = &detection.archived {
        if let Some(Layout::Encrypted(encryption)) = &layout {
            // An encrypted archive that does not open is not "everything added": say why.
            if check_sealable(encryption).is_err() {
                bail!("{reason}");
            }
        }
        if named.is_some() {
            bail!("{reason}");
        }
        warnings.push(format!(
            "archive cannot be read ({reason}); every file counts as added"
        ));
    }
    Ok(StatusReport {
        encrypted: layout.and_then(|layout| layout.label()),
        boots_next,
        // No archive in the next-boot bank yet: none to name (JSON `null`).
        archive: archive.filter(|path| path.symlink_metadata().is_ok()),
        changes: std::mem::take(&mut detection.changes),
        warnings,
        notes: std::mem::take(&mut detection.selected.notes),
        detection,
    })
}
