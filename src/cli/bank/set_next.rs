//! `statectl bank set-next`: make a bank boot next.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::super::Output;
use super::BankArg;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::bank::set_next::{set_next, SetNextOptions, Values};

/// Make a bank boot next by raising its updated above the other bank's
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Sets the bank's updated= to one more than the other bank's (as the boot loader \
reads both files), under both banks' locks (statectl's and ESXi's /tmp/<bank>.lck), so \
concurrent calls never end in a tie. The one line the loader reads for updated (or an ignored \
look-alike such as `updated = 3`) becomes a canonical `updated=N` with the line's own ending; no \
other byte of boot.cfg changes (temp file, fsync, rename), and the file is read back with the \
loader's rules before it is written. A bank whose updated is already higher is left as it is. \
An ineligible bank (bootstate 2 or 3, no build, quickboot set, ...) is refused unless --force, \
which also sets its bootstate to 0. A boot.cfg the loader cannot use is never rewritten. Prints \
the values before and after.",
    after_help = "Examples:\n  statectl bank set-next altbootbank          # roll back to the \
other bank at the next boot\n  statectl bank set-next bootbank --force      # undo a Shift+R \
(bootstate=3)"
)]
pub struct SetNextArgs {
    /// The bank to boot next
    #[arg(value_enum)]
    pub bank: BankArg,
    /// Also take an ineligible bank, setting its bootstate to 0
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for another run holding the bank lock
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

pub fn run(host: &Host, out: &Output, args: &SetNextArgs) -> Result<ExitCode> {
    let report = set_next(
        host,
        &SetNextOptions {
            bank: args.bank.into(),
            force: args.force,
            wait: Duration::from_secs(args.wait),
        },
    )?;
    out.warn_all(&report.warnings);
    if out.json {
        out.json(&report)?;
        return Ok(Exit::Success.into());
    }
    let name = report.bank.as_str();
    let show = |v: &Values| format!("updated={} bootstate={}", v.updated, v.bootstate);
    if report.changed {
        out.line(&format!(
            "{name}: {} -> {} (other bank: updated={}) in {}",
            show(&report.before),
            show(&report.after),
            report.other_updated,
            report.boot_cfg.display()
        ));
    } else {
        out.line(&format!(
            "{name}: unchanged, {} is already above the other bank's updated={}",
            show(&report.before),
            report.other_updated
        ));
    }
    let next = report.next_boot.map_or("none", |n| n.as_str());
    let tie = if report.tie { " (tie)" } else { "" };
    out.line(&format!("next boot: {next}{tie}"));
    Ok(Exit::Success.into())
}
