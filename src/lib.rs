//! statectl keeps the configuration state of a RAM-resident host (VMware ESXi is the model)
//! safe on its boot media.
//!
//! The flow of a backup: [`config`] says what is selected; [`detect`] walks the host, picks the
//! flagged files and compares them with the archive in the target bank (through a stat cache,
//! so an unchanged host costs a stat walk); [`archive`] writes a deterministic `state.tgz`
//! (ESXi layout: `local.tgz` inside, plus a manifest) and reads any archive as hostile input;
//! [`atomic`] replaces files so a crash never leaves half of one; [`bank`] parses and rewrites
//! `boot.cfg`, applies the boot loader's choice of bank and holds the bank lock (after the
//! [`root_lock`], in one order for every writer); [`ops`] ties
//! these into the commands, and [`cli`] is the only layer that parses arguments or prints.

pub mod archive;
pub mod atomic;
pub mod bank;
pub mod cli;
pub mod config;
pub mod detect;
pub mod durable;
pub mod error;
pub mod exit;
pub mod host;
pub mod hostfile;
pub mod lockfile;
pub mod ops;
pub mod process;
pub mod restore;
pub mod root_lock;
pub mod syslog;
pub mod timefmt;
pub mod walk;
#[cfg(test)]
mod walk_fuzz;
