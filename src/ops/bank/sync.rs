//! `bank sync`: copy `state.tgz` from the next-boot bank (or a named one) to the other bank.
//!
//! Under both banks' locks: the source must pass the archive verify (a broken archive is never
//! spread to the fallback bank); the target's `boot.cfg`, when present, must parse before
//! anything is written; the copy is the shared verified atomic copy; then the target's
//! `modules=` is made to list `state.tgz`. A target already holding the same bytes gets no write.
//!
//! The backup rule holds here too: each bank's manifest records that bank's own build, and a
//! rollback target (an older build) keeps the state its build ran with. So the copy is made
//! only between banks of the same build; between different builds sync refuses and points to
//! `statectl backup`, which writes a staged upgrade's bank with its own build.
//!
//! The copy is byte for byte (an encrypted archive stays encrypted), and a plaintext archive is
//! never copied over an encrypted one.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::status::archive_info;
use crate::archive::envelope::guard::check_plaintext_over;
use crate::archive::{verify_archive, Level, STATE_NAME};
use crate::bank::install::{copy_verified, ensure_state_listed};
use crate::bank::{next_boot, read_banks, BankName, BootCfg};
use crate::fs::atomic;
use crate::host::Host;
use crate::lock::lock_for_writing;

/// What `bank sync` suggests when the target is encrypted and the source is not.
const SYNC_HINT: &str = "back up to the target with `statectl backup --bank DIR` instead";

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub from: Option<BankName>,
    pub wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    Copied,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub action: SyncAction,
    pub from: BankName,
    pub to: BankName,
    pub source: PathBuf,
    pub target: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

pub fn sync(host: &Host, options: &SyncOptions) -> Result<SyncReport> {
    let banks = read_banks(host);
    let from = match options.from.or_else(|| next_boot(&banks)) {
        Some(name) => name,
        None => bail!(
            "no eligible boot bank to copy from (bootbank: {}; altbootbank: {}); name one with --from",
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.eligibility().err().unwrap_or_default()
        ),
    };
    let (source_bank, target_bank) = (&banks.get(from).path, &banks.get(from.other()).path);
    same_build(&banks, from)?;
    let _locks = lock_for_writing(host, &[source_bank, target_bank], options.wait)?;
    same_build(&read_banks(host), from)?;
    atomic::remove_stale_temps(target_bank)
        .with_context(|| format!("cannot clean bank `{}`", target_bank.display()))?;
    let source = source_bank.join(STATE_NAME);
    let target = target_bank.join(STATE_NAME);
    check_source(&source, host)?;
    let target_cfg = target_bank.join("boot.cfg");
    let mut warnings = Vec::new();
    if target_cfg.exists() {
        BootCfg::load(&target_cfg)?;
    } else {
        warnings.push(format!(
            "bank `{}` has no boot.cfg: state.tgz is copied, but nothing will load it",
            target_bank.display()
        ));
    }
    let source_info = archive_info(&source)
        .with_context(|| format!("cannot read `{}`", source.display()))?
        .with_context(|| format!("`{}` disappeared", source.display()))?;
    let same = archive_info(&target)
        .ok()
        .flatten()
        .is_some_and(|t| t.sha256 == source_info.sha256);
    let action = if same {
        SyncAction::Unchanged
    } else {
        if source_info.encrypted.is_none() {
            check_plaintext_over(&target, false, SYNC_HINT, &host.limits)?;
        }
        copy_verified(&source, &target, Some(&source_info.sha256))?;
        SyncAction::Copied
    };
    warnings.extend(ensure_state_listed(std::slice::from_ref(target_bank))?);
    Ok(SyncReport {
        action,
        from,
        to: from.other(),
        source,
        target,
        bytes: source_info.size,
        sha256: source_info.sha256,
        warnings,
    })
}

/// Refuses a copy between banks of different builds (see the module doc).
fn same_build(banks: &crate::bank::Banks, from: BankName) -> Result<()> {
    let (source, target) = (banks.get(from), banks.get(from.other()));
    let (have, want) = (source.build(), target.build());
    if have == want || target.usable_cfg().is_none() {
        return Ok(());
    }
    let older = match (have, want) {
        (Some(h), Some(w)) => {
            crate::bank::targets::compare_builds(w, h) == Some(std::cmp::Ordering::Less)
        }
        _ => false,
    };
    bail!(
        "bank {} `{}` runs build {}, bank {} `{}` build {}: {}; its state.tgz is not \
         replaced. `statectl backup` writes a staged upgrade's bank with its own build \
         (`--bank DIR` writes one on purpose)",
        from.other().as_str(),
        target.path.display(),
        want.unwrap_or("-"),
        from.as_str(),
        source.path.display(),
        have.unwrap_or("-"),
        if older {
            "it is a rollback target, whose archive is the state its older build ran with"
        } else {
            "its manifest would record the other bank's build"
        }
    )
}

fn check_source(source: &std::path::Path, host: &Host) -> Result<()> {
    if !source.is_file() {
        bail!(
            "`{}` does not exist; nothing to copy (run `statectl backup` first)",
            source.display()
        );
    }
    let report = verify_archive(source, &host.limits);
    if let Some(problem) = report.problems.iter().find(|p| p.level == Level::Error) {
        bail!(
            "`{}` fails verify ({}); it is not copied. See `statectl bank verify`",
            source.display(),
            problem.message
        );
    }
    Ok(())
}
