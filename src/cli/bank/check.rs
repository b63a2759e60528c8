//! `statectl bank check`: the monitoring probe, in the Nagios plugin convention.
//!
//! One line on stdout, `STATECTL OK|WARNING|CRITICAL|UNKNOWN - <summary> | <perfdata>`, and
//! the exit codes 0..3. Nothing else may leak: an error of the probe itself (and a usage error
//! on its command line) is UNKNOWN (3), never exit 1, 2 or 4. Each WARNING and CRITICAL finding
//! also goes to syslog.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::super::{Output, Report};
use crate::clock::now_secs;
use crate::exit::Monitoring;
use crate::host::Host;
use crate::ops::bank::check::{check, label, CheckReport};
use crate::syslog::{self, Severity};

/// Monitoring probe: one Nagios line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "A monitoring probe in the Nagios plugin convention. CRITICAL: no bank is \
eligible, or the next-boot bank names a missing module or its state.tgz fails verify, or the \
bootbank's boot.cfg is unusable to the loader so that the host would boot the altbootbank's \
archive (named). WARNING: the altbootbank boots next (an upgrade is staged, a manual switch, or \
a rollback target: told apart by bootstate and build), a higher-updated bank the loader skips (a \
rollback happened), a tie; the other bank is eligible but fails the same checks; or a pending change \
is over an hour old. UNKNOWN: the probe could not run. Modules are checked to exist, not \
decompressed (that is `bank verify`). Each WARNING/CRITICAL finding also goes to syslog.",
    after_help = "Examples:\n  statectl bank check\n  # NRPE: command[check_statectl]=/usr/bin/statectl bank check"
)]
pub struct CheckArgs {}

pub fn run(host: &Host, out: &Output, _args: &CheckArgs) -> ExitCode {
    match check(host, now_secs()) {
        Ok(report) => report_result(out, &report),
        Err(err) => unknown(out.json, &format!("{err:#}")),
    }
}

fn report_result(out: &Output, report: &CheckReport) -> ExitCode {
    for finding in &report.findings {
        let severity = match finding.level {
            Monitoring::Critical => Severity::Error,
            Monitoring::Warning => Severity::Warning,
            _ => continue,
        };
        syslog::log(
            severity,
            &format!("bank check {}: {}", label(finding.level), finding.message),
        );
    }
    if out.json {
        if out.json(report).is_err() {
            return Monitoring::Unknown.into();
        }
    } else {
        out.line(&nagios_line(report));
    }
    report.status.into()
}

/// The plugin's one line.
pub fn nagios_line(report: &CheckReport) -> String {
    let summary = if report.findings.is_empty() {
        format!(
            "next boot: {}, its state.tgz verifies, no change pending over an hour",
            report.next_boot.map_or("none", |n| n.as_str())
        )
    } else {
        let mut worst_first = report.findings.clone();
        worst_first.sort_by_key(|f| std::cmp::Reverse(f.level));
        worst_first
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let perf = format!(
        "eligible_banks={};;1:;0;2 pending={};;;0 pending_over_1h={};0;;0",
        report.eligible_banks, report.pending, report.pending_over_an_hour
    );
    one_line(&format!(
        "STATECTL {} - {summary} | {perf}",
        label(report.status)
    ))
}

/// The UNKNOWN `--json` document: a [`CheckReport`]'s status and findings, and the message (its
/// keys in the order it has always printed them).
#[derive(Serialize)]
struct Unknown<'a> {
    findings: [Finding<'a>; 1],
    message: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct Finding<'a> {
    level: &'static str,
    message: &'a str,
}

impl Report for Unknown<'_> {}

/// The UNKNOWN result: the plugin line, or under `--json` a JSON document as for any status.
fn unknown(json: bool, message: &str) -> ExitCode {
    let out = Output::new(json, false, 0);
    let message = one_line(message);
    if json {
        let document = Unknown {
            findings: [Finding {
                level: "UNKNOWN",
                message: &message,
            }],
            message: &message,
            status: "UNKNOWN",
        };
        let _ = out.json(&document);
    } else {
        out.line(&format!("STATECTL UNKNOWN - {message}"));
    }
    Monitoring::Unknown.into()
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// True when `args` (program name first) invoke `bank check`, so a usage error must be UNKNOWN.
pub fn is_check_invocation(args: &[OsString]) -> bool {
    let words: Vec<&OsString> = args.iter().skip(1).filter(|a| !is_option(a)).collect();
    words
        .windows(2)
        .any(|pair| pair[0] == "bank" && pair[1] == "check")
}

fn is_option(arg: &OsString) -> bool {
    arg.to_string_lossy().starts_with('-')
}

/// A command-line error of `bank check`, reported the plugin way (as JSON with `--json`).
pub fn usage_unknown(err: &clap::Error, args: &[OsString]) -> ExitCode {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("usage error");
    let json = args.iter().any(|arg| arg == "--json");
    unknown(
        json,
        &format!(
            "{} (see `statectl bank check --help`)",
            first.trim_start_matches("error: ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_invocations_are_recognised() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_check_invocation(&args(&[
            "statectl", "--json", "bank", "check", "-x"
        ])));
        assert!(!is_check_invocation(&args(&["statectl", "bank", "status"])));
    }
}
