//! The data model every layer shares: a file's stat ([`FileStat`], [`StatKey`]), the files a
//! run persists ([`FileTable`]), the records an archive holds ([`FileRecord`], [`RecordTable`],
//! [`Records`]), plain path lists ([`PathList`]) and the hex spelling of digests.
//!
//! A leaf: it imports nothing above it, so archive, detect and restore can all use it without
//! importing one another.

pub mod files;
pub mod hex;
pub mod paths;
pub mod record;
pub mod stat;
pub mod table;

pub use files::FileTable;
pub use hex::hex;
pub use paths::PathList;
pub use record::FileRecord;
pub use stat::{FileStat, StatKey};
pub use table::{AsFileRecords, PathOrder, RecordRef, RecordTable, Records};
