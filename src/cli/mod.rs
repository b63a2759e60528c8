//! The command line: clap types, turned into a [`Host`] and per-command options, and the one
//! place that prints. Each command has a small handler module.

mod archive_tools;
mod backup;
mod bank;
mod completions;
mod diff;
#[cfg(test)]
mod docs_check;
mod dropin;
mod export;
mod fleet;
mod install;
mod man;
mod man_text;
mod output;
mod passwd;
mod restore;
mod status;
mod usage;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::archive::Limits;
use crate::error::exit_for;
use crate::host::Host;
pub use output::{Output, Report};

/// Keeps the configuration state of a RAM-resident host (ESXi-style) safe on its boot banks.
#[derive(Debug, Parser)]
#[command(
    name = "statectl",
    version,
    about = "Keep the configuration state of a RAM-resident host safe on its boot banks",
    long_about = "statectl saves the flagged configuration files of a RAM-resident host (VMware \
ESXi is the model) into state.tgz on the boot bank that boots next, atomically and only when \
something changed; it lists, verifies, extracts and restores those archives, and manages the two \
boot banks.",
    after_help = "Examples:\n  statectl status                  # what the next backup would save\n  \
statectl backup                  # save it (what cron runs hourly)\n  \
statectl --root /mnt/host status # inspect a host mounted elsewhere\n  \
statectl COMMAND --help          # what a command does and changes, with examples\n\n\
Exit status: 0 ok, 1 failure, 2 usage error, 3 changes pending (status, diff), 4 bank locked. \
See statectl(1) (statectl man).",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after the subcommand (shown apart in `--help`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The host filesystem that is scanned and restored
    #[arg(
        long,
        global = true,
        env = "STATECTL_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub root: PathBuf,
    /// The bank that was booted [default: <root>/bootbank]
    #[arg(long, global = true, env = "STATECTL_BOOTBANK", value_name = "DIR")]
    pub bootbank: Option<PathBuf>,
    /// The other bank [default: <root>/altbootbank]
    #[arg(long, global = true, env = "STATECTL_ALTBOOTBANK", value_name = "DIR")]
    pub altbootbank: Option<PathBuf>,
    /// Selection rules (TOML) [default: <root>/etc/statectl.toml, optional]
    #[arg(long, global = true, env = "STATECTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout (one JSON document)
    #[arg(long, global = true)]
    pub json: bool,
    /// Less output on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// RAM-backed state: locks, the stat cache, a pending install (a reboot clears it) [default: /run/statectl, else /var/run/statectl]
    #[arg(long, global = true, env = "STATECTL_RUN_DIR", value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Largest total expanded size accepted from an archive, in bytes [default: 1 GiB]
    #[arg(long, global = true, env = "STATECTL_MAX_SIZE", value_name = "BYTES")]
    pub max_size: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Backup(backup::BackupArgs),
    Status(status::StatusArgs),
    Diff(diff::DiffArgs),
    List(archive_tools::ListArgs),
    Verify(archive_tools::VerifyArgs),
    Extract(archive_tools::ExtractArgs),
    Pack(archive_tools::PackArgs),
    Passwd(passwd::PasswdArgs),
    Restore(restore::RestoreArgs),
    Install(install::InstallArgs),
    Export(export::ExportArgs),
    History(fleet::HistoryArgs),
    Drift(fleet::DriftArgs),
    Bank(bank::BankArgs),
    Man(man::ManArgs),
    Completions(completions::CompletionsArgs),
}

impl GlobalArgs {
    /// The host layout these options describe.
    pub fn host(&self) -> Host {
        let mut host = Host::new(self.root.clone());
        if let Some(bank) = &self.bootbank {
            host.bootbank = bank.clone();
        }
        if let Some(bank) = &self.altbootbank {
            host.altbootbank = bank.clone();
        }
        if let Some(config) = &self.config {
            host.config = config.clone();
            host.config_explicit = true;
        }
        if let Some(run_dir) = &self.run_dir {
            host.run_dir = run_dir.clone();
        }
        if let Some(max) = self.max_size {
            host.limits = Limits {
                max_expanded: max,
                ..Limits::default()
            };
        }
        host
    }

    pub fn output(&self) -> Output {
        Output::new(self.json, self.quiet, self.verbose)
    }
}

/// Runs statectl with the process arguments and returns its exit status.
pub fn main() -> ExitCode {
    usage::die_quietly_on_closed_stdout();
    run(std::env::args_os().collect())
}

/// Runs statectl with `args` (the first is the program name).
pub fn run(args: Vec<OsString>) -> ExitCode {
    let args = match dropin::translate(args) {
        dropin::Invocation::Statectl(args) => args,
        dropin::Invocation::Refuse(line) => return usage::refuse(&line),
        dropin::Invocation::Usage(line) => return usage::script_usage(&line),
    };
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) if bank::check::is_check_invocation(&args) && err.use_stderr() => {
            return bank::check::usage_unknown(&err, &args)
        }
        Err(err) => return usage::usage_error(err),
    };
    let out = cli.global.output();
    let host = cli.global.host();
    let result = match &cli.command {
        Command::Backup(args) => backup::run(&host, &out, args),
        Command::Status(args) => status::run(&host, &out, args),
        Command::Diff(args) => diff::run(&host, &out, args),
        Command::List(args) => archive_tools::list(&host, &out, args),
        Command::Verify(args) => archive_tools::verify(&host, &out, args),
        Command::Extract(args) => archive_tools::extract_cmd(&host, &out, args),
        Command::Pack(args) => archive_tools::pack_cmd(&host, &out, args),
        Command::Passwd(args) => passwd::run(&host, &out, args),
        Command::Restore(args) => restore::run(&host, &out, args),
        Command::Install(args) => install::run(&host, &out, args),
        Command::Export(args) => export::run(&host, &out, args),
        Command::History(args) => fleet::history_cmd(&host, &out, args),
        Command::Drift(args) => fleet::drift_cmd(&host, &out, args),
        Command::Bank(args) => bank::run(&host, &out, args),
        Command::Man(args) => man::run(&out, args),
        Command::Completions(args) => completions::run(&out, args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            out.error(&err);
            exit_for(&err).into()
        }
    }
}

/// The clap command tree (for man page and completions).
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["statectl", "status", "--root", "/x", "--json"]).unwrap();
        assert_eq!(cli.global.root, PathBuf::from("/x"));
        assert!(cli.global.json);
        let host = cli.global.host();
        assert_eq!(host.bootbank, PathBuf::from("/x/bootbank"));
    }

    #[test]
    fn help_shows_global_options_under_their_own_heading_with_defaults() {
        let mut status = Cli::command();
        status.build(); // propagates the global options to the subcommands
        let help = status
            .find_subcommand_mut("status")
            .unwrap()
            .render_help()
            .to_string();
        let (own, global) = help.split_once("Global options:").expect(&help);
        assert!(!own.contains("--root"), "{help}");
        for option in ["--root", "--run-dir", "--json", "--max-size"] {
            assert!(global.contains(option), "{option}: {help}");
        }
        assert!(global.contains("[default: /run/statectl"), "{help}");
    }
}
