//! `bank check`: the monitoring probe's findings, each with its Nagios level.
//!
//! CRITICAL: no eligible bank; the next-boot bank names a missing module or its `state.tgz`
//! fails verify (the host would not come back with its config); the bootbank's `boot.cfg` is
//! one the loader cannot use, so the next boot loads the altbootbank's archive instead of the
//! running system's (named). WARNING: the running system (the bootbank) is not the bank that
//! boots next, told apart as a staged upgrade (bootstate 1, same or newer build), a manual
//! switch (bootstate 0, same or newer build), a rollback target (older build), or a rollback
//! that happened (a higher-`updated` bank the loader skips); a tie; the fallback bank (the other one) is eligible
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
use crate::bank::targets::{alt_role, AltRole};
use crate::bank::{is_tie, next_boot, Bank, BankName, Banks};
use crate::exit::Monitoring;
use crate::host::Host;
use crate::ops::status::status;
use crate::records::Records;

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
    findings.extend(pending_installs(host, &banks));
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

/// A bank holding an install that waits for its reboot (backup leaves it alone): WARNING.
fn pending_installs(host: &Host, banks: &Banks) -> Vec<Finding> {
    let Ok(run_dir) = host.run_dir() else {
        return Vec::new();
    };
    [&banks.bootbank, &banks.altbootbank]
        .into_iter()
        .filter(|bank| crate::ops::pending::pending(run_dir, &host.root, &bank.path).is_some())
        .map(|bank| Finding {
            level: Monitoring::Warning,
            message: format!(
                "{} holds an install pending its reboot; backup leaves it alone until then",
                bank.name.as_str()
            ),
        })
        .collect()
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

/// What the banks' order means for the running system (the bootbank): a staged upgrade, a
/// manual switch, a rollback target, a tie (WARNING), or a bootbank `boot.cfg` the loader
/// cannot use so that the host would boot the other bank's archive without knowing (CRITICAL).
fn running_bank(banks: &Banks) -> Option<Finding> {
    let (boot, alt) = (&banks.bootbank, &banks.altbootbank);
    if is_tie(banks) {
        return Some(warning(format!(
            "tie: both banks are eligible with updated={}; the loader boots the first partition \
             it scans, which statectl cannot see; run `statectl bank set-next` to decide",
            boot.updated()
        )));
    }
    if next_boot(banks) == Some(BankName::Altbootbank) {
        if let Err(reason) = boot.eligibility() {
            return Some(critical(format!(
                "the loader cannot use bootbank's boot.cfg ({reason}): the next boot loads \
                 altbootbank `{}` (build {}) and its {}, not the running system's state",
                alt.path.display(),
                alt.build().unwrap_or("-"),
                archive_words(alt)
            )));
        }
        return Some(warning(alt_message(banks)));
    }
    if boot.updated() >= alt.updated() {
        return None;
    }
    let reason = alt.eligibility().err().unwrap_or_default();
    Some(warning(format!(
        "running from bootbank (updated={}) although altbootbank has updated={} ({reason}): \
         a rollback happened",
        boot.updated(),
        alt.updated()
    )))
}

fn alt_message(banks: &Banks) -> String {
    let (boot, alt) = (&banks.bootbank, &banks.altbootbank);
    let (running, next) = (boot.build().unwrap_or("-"), alt.build().unwrap_or("-"));
    let head = format!(
        "running from bootbank (updated={}, build {running}) but the loader will boot \
         altbootbank (updated={}, build {next}) next",
        boot.updated(),
        alt.updated()
    );
    match alt_role(banks) {
        AltRole::UpgradeStaged => format!(
            "{head}: an upgrade is staged (bootstate=1); reboot to finish it; backups write \
             both banks"
        ),
        AltRole::ManualSwitch => format!(
            "{head}: a manual switch (same or newer build, bootstate=0, as `bank set-next` \
             leaves it); backups write both banks"
        ),
        AltRole::RollbackTarget => format!(
            "{head}: a rollback target (older build); its state.tgz is kept as that build ran \
             with, so changes made now are not in it"
        ),
        _ => format!("{head}: the builds cannot be compared; its state.tgz is not written"),
    }
}

fn archive_words(bank: &Bank) -> String {
    let path = bank.state_archive();
    match std::fs::metadata(&path) {
        Ok(meta) => format!("state.tgz `{}` ({} bytes)", path.display(), meta.len()),
        Err(_) => "no state.tgz (the host comes up unconfigured)".to_string(),
    }
}

fn warning(message: String) -> Finding {
    Finding {
        level: Monitoring::Warning,
        message,
    }
}

/// Counts pending changes and those whose file is older than the grace period. A host that
/// cannot be compared (a missing `required` file, a bad config: `backup` refuses to run, so
/// the saved state goes stale) is a WARNING finding, not a failure of the probe.
fn pending_changes(host: &Host, now: i64, out: &mut Vec<Finding>) -> Result<(usize, usize)> {
    let report = match status(host) {
        Ok(report) => report,
        Err(err) => {
            out.push(Finding {
                level: Monitoring::Warning,
                message: format!(
                    "the host cannot be compared with its archive, so `statectl backup` fails \
                     too: {err:#}"
                ),
            });
            return Ok((0, 0));
        }
    };
    let changes = &report.changes;
    let current = report.detection.current();
    let mut old: Vec<(&str, i64)> = Vec::new();
    for path in changes.added.iter().chain(changes.modified.iter()) {
        if let Some(at) = current.find(path) {
            old.push((path, current.record(at).mtime));
        }
    }
    for path in changes.removed.iter() {
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
