//! `statectl bank status`: both banks, their eligibility and which one boots next.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::super::Output;
use crate::bank::BankName;
use crate::clock::now_secs;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::bank::status::{bank_status, BankEntry, BankStatus};

/// Show both banks, why one is not eligible, and which one boots next
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Shows each bank's path and the updated, bootstate and build the boot loader \
reads (esx-boot's rules: a blank before `=` hides a key, the last duplicate wins, a malformed \
number makes the whole file unusable), each line it ignores or reads otherwise than it looks, \
whether the loader would boot the bank (and the reason if not), a tie (both eligible with the \
same updated), its state.tgz (size, age, sha256 with -v or --json), which \
bank boots next, and whether that is the running system (the bootbank). Exit 0 whenever the bank \
directories could be read, even when no bank is eligible.",
    after_help = "Examples:\n  statectl bank status\n  statectl bank status --json | jq -r .next_boot"
)]
pub struct StatusArgs {}

pub fn run(host: &Host, out: &Output, _args: &StatusArgs) -> Result<ExitCode> {
    let report = bank_status(host)?;
    out.warn_all(&report.warnings);
    if out.json {
        out.json(&report)?;
    } else {
        for bank in &report.banks {
            print_bank(out, bank, report.next_boot == Some(bank.name));
        }
        out.line(&next_line(&report));
    }
    Ok(Exit::Success.into())
}

fn print_bank(out: &Output, bank: &BankEntry, next: bool) {
    let number = |n: Option<i64>| n.map_or("-".to_string(), |n| n.to_string());
    let marker = if next { "*" } else { " " };
    out.line(&format!(
        "{marker} {:<11} {}  updated={} bootstate={} build={}",
        bank.name.as_str(),
        bank.path.display(),
        number(bank.updated.map(|n| n as i64)),
        number(bank.bootstate.map(i64::from)),
        bank.build.as_deref().unwrap_or("-"),
    ));
    for note in &bank.ignored {
        out.line(&format!(
            "    line {} `{}`: {}",
            note.line, note.text, note.note
        ));
    }
    match &bank.reason {
        None => out.line("    eligible"),
        Some(reason) => out.line(&format!("    not eligible: {reason}")),
    }
    match &bank.archive {
        None => out.line("    no state.tgz"),
        Some(archive) => {
            let encrypted = archive
                .encrypted
                .map(|mode| format!(", encrypted ({mode})"))
                .unwrap_or_default();
            out.line(&format!(
                "    state.tgz: {} bytes, written {}{encrypted}",
                archive.size,
                age(now_secs() - archive.mtime)
            ));
            out.line_or_detail(false, &format!("    sha256 {}", archive.sha256));
        }
    }
}

fn next_line(report: &BankStatus) -> String {
    if report.tie {
        return "next boot: tie - both banks are eligible with the same updated; the loader \
                takes the first partition it scans, which statectl cannot see (it assumes \
                bootbank); run `statectl bank set-next` to decide"
            .into();
    }
    match report.next_boot {
        None => "next boot: none - no bank is eligible; the host will not boot as it is".into(),
        Some(BankName::Bootbank) => {
            "next boot: bootbank (*), the running system: the loader prefers it".into()
        }
        Some(BankName::Altbootbank) => "next boot: altbootbank (*); the running system \
             (bootbank) is not the loader's choice (a staged upgrade, or `bank set-next`)"
            .into(),
    }
}

/// "42 s ago", "5 min ago", "3 h ago", "2 days ago".
fn age(secs: i64) -> String {
    match secs {
        s if s < 0 => "in the future (check the clock)".into(),
        s if s < 120 => format!("{s} s ago"),
        s if s < 2 * 3600 => format!("{} min ago", s / 60),
        s if s < 2 * 86400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}
