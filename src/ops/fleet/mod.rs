//! The fleet: off-host copies of each host's state in a shared directory (`backup --copy-to`,
//! `[copy]`), and the commands that read such a directory for many hosts at once (`history`,
//! `drift`). Every file in a shared directory may have been written by any host there, so
//! bundles are read only through the one hardened bundle reader.

pub mod copy;
pub mod drift;
pub mod history;
pub mod ignore;
pub mod store;
