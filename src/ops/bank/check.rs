//! `bank check`: the monitoring probe's findings, each with its Nagios level.
//!
//! CRITICAL: no eligible bank; the next-boot bank names a missing module or its `state.tgz`
//! fails verify (the host would not come back with its config). WARNING: the running system
//! (the bootbank) is not the bank with the highest `updated` (an upgrade is staged and waits
//! for a reboot, or a rollback/Shift+R happened); the fallback bank (the other one) is eligible
//! but fails the same quick verify; a pending change whose file is over an hour old (the hourly
//! backup is not running). Modules are only checked to exist here: decompressing them is
//! `bank verify`'s job, too heavy for a probe run every few minutes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::readable_banks;
use super::verify::{verify_bank, Depth};
use crate::archive::Level;
use crate::bank::{next_boot, Bank, BankName, Banks};
use crate::exit::Monitoring;
use crate::host::Host;
use crate::ops::status::status;

/// A pending change becomes a warning after this many seconds.
pub const PENDING_GRACE_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "level_name")]
    pub level: Monitoring,
    pub message: String,
}

/// What the probe found and the figures it reports as perfdata.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    #[serde(serialize_with = "level_name")]
    pub status: Monitoring,
    pub next_boot: Option<BankName>,
    pub eligible_banks: usize,
    pub pending: usize,
    pub pending_over_an_hour: usize,
    pub findings: Vec<Finding>,
}

/// The Nagios name of a level.
pub fn label(level: Monitoring) -> &'static str {
    match level {
        Monitoring::Ok => "OK",
        Monitoring::Warning => "WARNING",
        Monitoring::Critical => "CRITICAL",
        Monitoring::Unknown => "UNKNOWN",
    }
}

fn level_name<S: serde::Serializer>(level: &Monitoring, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(label(*level))
}

/// Runs the probe; an error means the probe itself could not run (UNKNOWN).
pub fn check(host: &Host, now: i64) -> Result<CheckReport> {
    let banks = readable_banks(host)?;
    let next = next_boot(&banks);
    let mut findings = Vec::new();
    let mut next_ok = false;
    match next {
        None => findings.push(critical(format!(
            "no eligible boot bank (bootbank: {}; altbootbank: {})",
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.eligibility().err().unwrap_or_default()
        ))),
        Some(name) => {
            next_ok = bank_findings(banks.get(name), Monitoring::Critical, &mut findings, host);
            let fallback = banks.get(name.other());
            if fallback.is_eligible() {
                bank_findings(fallback, Monitoring::Warning, &mut findings, host);
            }
        }
    }
    findings.extend(running_bank(&banks));
    let (pending, old) = if next_ok {
        pending_changes(host, now, &mut findings)?
    } else {
        (0, 0)
    };
    let status = findings
        .iter()
        .map(|f| f.level)
        .max()
        .unwrap_or(Monitoring::Ok);
    Ok(CheckReport {
        status,
        next_boot: next,
        eligible_banks: [&banks.bootbank, &banks.altbootbank]
            .iter()
            .filter(|b| b.is_eligible())
            .count(),
        pending,
        pending_over_an_hour: old,
        findings,
    })
}

fn critical(message: String) -> Finding {
    Finding {
        level: Monitoring::Critical,
        message,
    }
}

/// Quick-verifies `bank`: its errors get `level`, its warnings WARNING. True when no error.
fn bank_findings(bank: &Bank, level: Monitoring, out: &mut Vec<Finding>, host: &Host) -> bool {
    let role = if level == Monitoring::Critical {
        "next-boot"
    } else {
        "fallback"
    };
    let report = verify_bank(bank, Depth::Quick, &host.limits);
    for problem in &report.problems {
        out.push(Finding {
            level: match problem.level {
                Level::Error => level,
                Level::Warning => Monitoring::Warning,
            },
            message: format!("{role} bank {}: {}", bank.name.as_str(), problem.message),
        });
    }
    report.ok
}

/// WARNING when the booted bank is not the one with the highest `updated`.
fn running_bank(banks: &Banks) -> Option<Finding> {
    let (boot, alt) = (&banks.bootbank, &banks.altbootbank);
    if boot.updated() >= alt.updated() {
        return None;
    }
    let message = match alt.eligibility() {
        Ok(()) => format!(
            "running from bootbank (updated={}) but the loader will boot altbootbank \
             (updated={}) next: an upgrade is staged; reboot to finish it",
            boot.updated(),
            alt.updated()
        ),
        Err(reason) => format!(
            "running from bootbank (updated={}) although altbootbank has updated={} \
             ({reason}): a rollback happened",
            boot.updated(),
            alt.updated()
        ),
    };
    Some(Finding {
        level: Monitoring::Warning,
        message,
    })
}

/// Counts pending changes and those whose file is older than the grace period.
fn pending_changes(host: &Host, now: i64, out: &mut Vec<Finding>) -> Result<(usize, usize)> {
    let report = status(host)?;
    let changes = &report.changes;
    let mtimes: std::collections::HashMap<&str, i64> = report
        .detection
        .current
        .iter()
        .map(|r| (r.path, r.mtime))
        .collect();
    let mut old: Vec<(&str, i64)> = Vec::new();
    for path in changes.added.iter().chain(&changes.modified) {
        if let Some(&mtime) = mtimes.get(path.as_str()) {
            old.push((path, mtime));
        }
    }
    for path in &changes.removed {
        old.push((path, removal_time(&host.root, path)));
    }
    old.retain(|(_, mtime)| now - mtime > PENDING_GRACE_SECS);
    old.sort_by_key(|(_, mtime)| *mtime);
    if let Some((oldest, mtime)) = old.first() {
        out.push(Finding {
            level: Monitoring::Warning,
            message: format!(
                "{} change(s) pending for over an hour (oldest: {oldest}, {} min); is the \
                 hourly `statectl backup` running?",
                old.len(),
                (now - mtime) / 60
            ),
        });
    }
    Ok((changes.len(), old.len()))
}

/// When a removed file went: its nearest existing directory's mtime (a removal updates it).
fn removal_time(root: &Path, rel: &str) -> i64 {
    root.join(rel)
        .ancestors()
        .skip(1)
        .find_map(|dir| std::fs::metadata(dir).ok())
        .map_or(0, |meta| meta.mtime())
}
