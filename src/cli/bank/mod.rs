//! `statectl bank ...`: the boot banks. One small handler per subcommand.

pub mod check;
mod set_next;
mod status;
mod sync;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

use super::Output;
use crate::bank::BankName;
use crate::host::Host;

/// Inspect, verify, switch and sync the two boot banks; a monitoring probe
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "boot.cfg is read exactly as the boot loader (vmware/esx-boot) reads it: a blank \
before `=` hides a key, keys match by prefix, the last duplicate wins, a malformed number (+5, \
0x10, 5 # x) makes the whole file unusable, updated is a 32-bit atoi. The loader boots the \
eligible bank (usable file, updated non-zero, build set, quickboot 0, bootstate 0, or 1 within \
the first 512 bytes) with the highest updated; on a tie it takes the first partition, which \
statectl cannot see: it reports the bootbank and says tie. These commands show that choice and why, check that the banks can \
boot, change the choice, copy state.tgz between banks, and probe it all for monitoring.",
    after_help = "Examples:\n  statectl bank status\n  statectl bank verify\n  statectl bank \
set-next altbootbank\n  statectl bank sync\n  statectl bank check"
)]
pub struct BankArgs {
    #[command(subcommand)]
    pub command: BankCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BankCommand {
    Status(status::StatusArgs),
    Verify(verify::VerifyArgs),
    SetNext(set_next::SetNextArgs),
    Sync(sync::SyncArgs),
    Check(check::CheckArgs),
}

/// A bank named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BankArg {
    /// The bank that was booted
    Bootbank,
    /// The other bank
    Altbootbank,
}

impl From<BankArg> for BankName {
    fn from(arg: BankArg) -> BankName {
        match arg {
            BankArg::Bootbank => BankName::Bootbank,
            BankArg::Altbootbank => BankName::Altbootbank,
        }
    }
}

pub fn run(host: &Host, out: &Output, args: &BankArgs) -> Result<ExitCode> {
    match &args.command {
        BankCommand::Status(args) => status::run(host, out, args),
        BankCommand::Verify(args) => verify::run(host, out, args),
        BankCommand::SetNext(args) => set_next::run(host, out, args),
        BankCommand::Sync(args) => sync::run(host, out, args),
        BankCommand::Check(args) => Ok(check::run(host, out, args)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn bank_subcommands_parse() {
        let cli = Cli::try_parse_from(["statectl", "bank", "set-next", "altbootbank", "--force"])
            .unwrap();
        let Command::Bank(BankArgs {
            command: BankCommand::SetNext(args),
        }) = cli.command
        else {
            panic!("not set-next");
        };
        assert_eq!(BankName::from(args.bank), BankName::Altbootbank);
        assert!(args.force);
        assert!(Cli::try_parse_from(["statectl", "bank", "set-next", "third"]).is_err());
        assert!(Cli::try_parse_from(["statectl", "bank", "sync", "--from", "bootbank"]).is_ok());
    }
}
