//! `state.tgz` and `local.tgz`: the one writer, the one hostile-input reader, the manifest and
//! the member-name rules every command shares.
//!
//! Layout (docs/reference.md "Archive format"): the outer gzip'd tar holds `local.tgz` first and
//! then the manifest `statectl.json`; `local.tgz` holds the persisted files by root-relative
//! path, sorted.

pub(crate) mod bundle;
pub(crate) mod entries;
pub mod envelope;
pub(crate) mod gzip;
pub(crate) mod gzip_writer;
pub(crate) mod manifest;
pub(crate) mod names;
pub(crate) mod problem;
pub(crate) mod read;
pub(crate) mod recover;
pub(crate) mod streams;
pub(crate) mod verify;
pub(crate) mod writer;

pub use crate::config::Limits;
pub(crate) use problem::{Level, Problem};
pub(crate) use read::{
    open_archive, open_private_copy, read_archive, read_archive_from, reread_ahead, ArchiveSummary,
    EntryKind,
};
pub use read::{read_archive_stream, CheckOnly, InnerEntry, Visitor};
pub(crate) use verify::{verify_against, verify_archive, VerifyReport};
#[cfg(test)]
pub(crate) use writer::{write_archive, SourceFile};
pub(crate) use writer::{write_archive_file, ArchiveLabel, WrittenArchive};

/// Name of the inner archive member.
pub const INNER_NAME: &str = "local.tgz";
/// Name of the manifest member.
pub const MANIFEST_NAME: &str = "statectl.json";
/// Name of the archive in a bank.
pub const STATE_NAME: &str = "state.tgz";
