//! `statectl bank sync`: copy `state.tgz` to the other bank, verified.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::super::Output;
use super::BankArg;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::bank::sync::{sync, SyncAction, SyncOptions};

/// Copy state.tgz from the next-boot bank (or --from) to the other bank, verified
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Under both banks' locks: verifies the source state.tgz (a failing one is \
refused), copies it into the other bank through a temp file that is fsynced and read back and \
compared by sha256 before it is renamed over the old one, then makes that bank's boot.cfg list \
state.tgz (one appended ` --- state.tgz`, no other byte changed). A target that already holds \
the same bytes is not written. Each bank's archive records that bank's own build: sync copies \
only between banks of the same build (a rollback target keeps its older build's state; backup \
writes a staged upgrade's bank).",
    after_help = "Examples:\n  statectl bank sync\n  statectl bank sync --from altbootbank"
)]
pub struct SyncArgs {
    /// Copy from this bank [default: the one that boots next]
    #[arg(long, value_enum, value_name = "NAME")]
    pub from: Option<BankArg>,
    /// Seconds to wait for another run holding a bank lock
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
}

pub fn run(host: &Host, out: &Output, args: &SyncArgs) -> Result<ExitCode> {
    let report = sync(
        host,
        &SyncOptions {
            from: args.from.map(Into::into),
            wait: Duration::from_secs(args.wait),
        },
    )?;
    out.warn_all(&report.warnings);
    if out.json {
        out.json(&report)?;
    } else if !out.quiet {
        let verb = match report.action {
            SyncAction::Copied => "copied",
            SyncAction::Unchanged => "already in sync:",
        };
        out.line(&format!(
            "{verb} {} -> {} ({} bytes, sha256 {})",
            report.source.display(),
            report.target.display(),
            report.bytes,
            report.sha256
        ));
    }
    Ok(Exit::Success.into())
}
