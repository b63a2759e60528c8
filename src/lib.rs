//! statectl keeps the configuration state of a RAM-resident host (VMware ESXi is the model)
//! safe on its boot media.
//!
//! The flow of a backup: [`config`] says what is selected; [`detect`] walks the host, picks the
//! flagged files and compares them with the archive in the target bank (through a stat cache,
//! so an unchanged host costs a stat walk); [`archive`] writes a deterministic `state.tgz`
//! (ESXi layout: `local.tgz` inside, plus a manifest) and reads any archive as hostile input;
//! [`bank`] parses and rewrites `boot.cfg` and applies the boot loader's choice of bank;
//! [`ops`] ties these into the commands, and [`cli`] is the only layer that parses arguments or
//! prints.
//!
//! Imports go one way, `cli -> ops -> {bank, detect, restore} -> archive -> leaves`
//! (`layers_check` fails on any other). The leaves: [`records`] (the data model: stat rows,
//! file and record tables, path lists, hex), [`fs`] (atomic replace, syncfs, the in-root walk),
//! [`lock`] (root and bank locks, in one order for every writer), [`config`] (with the input
//! [`config::Limits`]), [`clock`], [`host`], [`error`], [`exit`], [`process`], [`syslog`].
//!
//! The modules are `pub(crate)`, so the compiler reports what nothing uses; the few marked
//! `#[doc(hidden)] pub` are what `main.rs`, `tests/`, `benches/` and `fuzz/` drive directly.

#[doc(hidden)]
pub mod archive;
pub(crate) mod bank;
pub(crate) mod cli;
#[doc(hidden)]
pub mod clock;
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
