//! The operations behind the commands, as library calls that return reports and never print.

pub mod archive_path;
pub mod backup;
pub mod bank;
pub mod diff;
pub mod extract;
pub mod pack;
pub mod passwd;
pub mod status;
