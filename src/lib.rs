//! statectl keeps the configuration state of a RAM-resident host (VMware ESXi is the model)
//! safe on its boot media.
//!
//! The flow of a backup: [`config`] says what is selected; [`detect`] walks the host, picks the
//! flagged files and compares them with the archive in the target bank (through a stat cache,
//! so an unchanged host costs a stat walk); [`archive`] writes a deterministic `state.tgz`
//! (ESXi layout: `local.tgz` inside, plus a manifest) and reads any archive as hostile input;
//! [`fs::atomic`] replaces files so a crash never leaves half of one; [`bank`] parses and rewrites
//! `boot.cfg`, applies the boot loader's choice of bank and holds the bank lock (after the
//! [`lock`], in one order for every writer); [`ops`] ties
//! these into the commands, and [`cli`] is the only layer that parses arguments or prints.
//!
//! The modules are `pub(crate)`, so the compiler reports what nothing uses; the few marked
//! `#[doc(hidden)] pub` are what `main.rs`, `tests/`, `benches/` and `fuzz/` drive directly.

#[doc(hidden)]
pub mod archive;
pub(crate) mod bank;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod detect;
pub(crate) mod error;
pub(crate) mod exit;
pub(crate) mod fs;
pub(crate) mod host;
#[cfg(test)]
mod layers_check;

#[doc(hidden)]
pub use cli::main;
#[doc(hidden)]
pub mod lock;
pub(crate) mod ops;
pub(crate) mod process;
pub(crate) mod records;
pub(crate) mod restore;
pub(crate) mod syslog;
#[doc(hidden)]
pub mod timefmt;
