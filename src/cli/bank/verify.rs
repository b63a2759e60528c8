//! `statectl bank verify`: can the loader open every module, and is `state.tgz` sound?

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::super::Output;
use super::BankArg;
use crate::archive::Level;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::bank::readable_banks;
use crate::ops::bank::verify::{verify_banks, Depth};

/// Check that every boot module exists and decompresses, and that state.tgz verifies
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Checks both banks (or the one named): every module named by kernel= and \
modules= exists inside the bank (a name with `..` or one that leads outside the bank is an \
error); every gzip-compressed module (by its magic bytes) decompresses cleanly to its end; \
state.tgz passes the same checks as `statectl verify`. boot.cfg is read with the loader's rules: \
each line it ignores is a warning, a file it cannot use and what mboot refuses (a malformed \
number in its options, no kernel=, skip set) are errors. A state.tgz that modules= does not list is \
a warning; a bank with no boot.cfg at all is an empty bank (a warning). Prints each finding \
with its level; exit 1 when any finding is an error.",
    after_help = "Examples:\n  statectl bank verify\n  statectl bank verify altbootbank --json"
)]
pub struct VerifyArgs {
    /// Check only this bank [default: both]
    #[arg(value_enum)]
    pub bank: Option<BankArg>,
}

pub fn run(host: &Host, out: &Output, args: &VerifyArgs) -> Result<ExitCode> {
    let banks = readable_banks(host)?;
    let report = verify_banks(&banks, args.bank.map(Into::into), Depth::Full, &host.limits);
    if out.json {
        out.json(&report)?;
    } else {
        for bank in &report.banks {
            for problem in &bank.problems {
                let level = match problem.level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                };
                out.line(&format!(
                    "{}: {level}: {}",
                    bank.name.as_str(),
                    problem.message
                ));
            }
            if !out.quiet {
                let verdict = if bank.ok { "ok" } else { "FAILED" };
                out.line(&format!(
                    "{}: {verdict} ({} modules checked in {})",
                    bank.name.as_str(),
                    bank.modules,
                    bank.path.display()
                ));
            }
        }
    }
    Ok(if report.ok {
        Exit::Success
    } else {
        Exit::Failure
    }
    .into())
}
