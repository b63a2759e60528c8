//! `state.tgz` and `local.tgz`: the one writer, the one hostile-input reader, the manifest and
//! the member-name rules every command shares.
//!
//! Layout (docs/reference.md "Archive format"): the outer gzip'd tar holds `local.tgz` first and
//! then the manifest `statectl.json`; `local.tgz` holds the persisted files by root-relative
//! path, sorted.

pub mod bundle;
pub mod entries;
pub mod envelope;
pub mod gzip;
pub mod gzip_writer;
pub mod manifest;
pub mod names;
pub mod problem;
pub mod read;
pub mod record;
pub mod recover;
pub mod streams;
pub mod table;
pub mod verify;
pub mod writer;

pub use manifest::Manifest;
pub use problem::{Level, Problem};
pub use read::{
    open_archive, open_private_copy, read_archive, read_archive_from, read_archive_stream,
    reread_ahead, reread_archive_from, ArchiveSummary, CheckOnly, EntryKind, InnerEntry, Visitor,
};
pub use record::FileRecord;
pub use table::{RecordRef, RecordTable, Records};
pub use verify::{verify_against, verify_archive, VerifyReport};
pub use writer::{write_archive, write_archive_file, ArchiveLabel, SourceFile, WrittenArchive};

/// Name of the inner archive member.
pub const INNER_NAME: &str = "local.tgz";
/// Name of the manifest member.
pub const MANIFEST_NAME: &str = "statectl.json";
/// Name of the archive in a bank.
pub const STATE_NAME: &str = "state.tgz";

/// Limits on untrusted input (docs/reference.md "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total decompressed bytes of both layers.
    pub max_expanded: u64,
    /// Entries per layer.
    pub max_entries: u64,
    /// Bytes of one header extension (GNU long name, PAX records).
    pub max_header: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expanded: 1 << 30,
            max_entries: 100_000,
            max_header: 64 << 10,
        }
    }
}
