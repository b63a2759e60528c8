//! The two boot banks: `boot.cfg` and the loader's choice of bank (their locks are in
//! `crate::lock`).

pub(crate) mod bootcfg;
pub(crate) mod install;
pub(crate) mod loader;
pub(crate) mod modules;
pub(crate) mod select;
pub(crate) mod targets;

pub(crate) use bootcfg::BootCfg;
pub(crate) use select::{is_tie, next_boot, read_banks, Bank, BankName, Banks};
