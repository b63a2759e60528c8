//! The two boot banks: `boot.cfg`, the loader's choice of bank, and the per-bank lock.

pub mod bootcfg;
pub mod install;
pub mod loader;
pub mod lock;
pub mod modules;
pub mod select;
pub mod targets;

pub use bootcfg::BootCfg;
pub use lock::{lock_banks, lock_for_writing, BankLock, WriteLocks};
pub use select::{is_tie, next_boot, read_banks, Bank, BankName, Banks};
