//! The operations behind the commands, as library calls that return reports and never print.

pub mod archive_path;
pub mod backup;
pub mod bank;
pub mod checks;
pub mod diff;
pub mod export;
pub mod extract;
pub mod fleet;
pub mod identity;
pub mod install;
pub mod pack;
pub mod passwd;
pub mod pending;
pub mod release;
pub mod restore;
pub mod restored;
pub mod status;
