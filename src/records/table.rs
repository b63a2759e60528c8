//! `RecordTable`: many [`FileRecord`]s in compact form, for readers and detection at 100,000
//! files.
//!
//! A `FileRecord` costs about 130 bytes on the heap (two `String`s, one of them 64 hex digits
//! of sha256). Every archive read keeps one per file, and detection holds the archive's beside
//! the host's, so at scale the records were most of the memory. A table keeps one
//! fixed-size row per file (the raw 32-byte digest, size, mode, owner, mtime: 64 bytes) and
//! every name in one arena string: tens of bytes per file plus the name, and no allocation per
//! record. Rows keep the order they were pushed in (the selection's and the archive's, both
//! usually sorted by path).

use serde::{Serialize, Serializer};

use super::hex::{digest_of_hex, hex};
use super::record::FileRecord;

/// One row: the record without its name (the name is in the arena, ending at `name_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    name_end: u32,
    sha256: [u8; 32],
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// Records in push order: fixed-size rows and one arena of names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordTable {
    names: String,
    rows: Vec<Row>,
}

/// One record of a table, borrowed (the name) and copied (the fixed fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub path: &'a str,
    pub sha256: [u8; 32],
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

impl RecordRef<'_> {
    /// True when content and restored metadata are the same (the path is not compared).
    pub fn same_state(&self, other: &RecordRef) -> bool {
        let state = |r: &RecordRef| (r.sha256, r.size, r.mode, r.uid, r.gid, r.mtime);
        state(self) == state(other)
    }

    /// The record in its ordinary (owned) form.
    pub fn to_record(self) -> FileRecord {
        FileRecord {
            path: self.path.to_string(),
            sha256: hex(&self.sha256),
            size: self.size,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
        }
    }

    /// The compact form of `record`; `None` when its sha256 is not 64 hex digits (the one
    /// reader and the hashing here only make such).
    pub fn of(record: &FileRecord) -> Option<RecordRef<'_>> {
        Some(RecordRef {
            path: &record.path,
            sha256: digest_of_hex(&record.sha256)?,
            size: record.size,
            mode: record.mode,
            uid: record.uid,
            gid: record.gid,
            mtime: record.mtime,
        })
    }
}

impl RecordTable {
    /// The empty table.
    pub const EMPTY: RecordTable = RecordTable {
        names: String::new(),
        rows: Vec::new(),
    };

    /// An empty table with room for `rows` records.
    pub fn with_capacity(rows: usize) -> RecordTable {
        RecordTable {
            names: String::new(),
            rows: Vec::with_capacity(rows),
        }
    }

    /// The compact form of `records`; `None` when one has a malformed sha256.
    pub fn from_records(records: &[FileRecord]) -> Option<RecordTable> {
        let mut table = RecordTable::with_capacity(records.len());
        for record in records {
            table.push(&RecordRef::of(record)?);
        }
        Some(table)
    }

    /// Appends a record.
    pub fn push(&mut self, record: &RecordRef) {
        self.names.push_str(record.path);
        self.rows.push(Row {
            name_end: self.names.len() as u32,
            sha256: record.sha256,
            size: record.size,
            mode: record.mode,
            uid: record.uid,
            gid: record.gid,
            mtime: record.mtime,
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The path of record `i`.
    pub fn path(&self, i: usize) -> &str {
        let start = match i {
            0 => 0,
            _ => self.rows[i - 1].name_end as usize,
        };
        &self.names[start..self.rows[i].name_end as usize]
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> RecordRef<'_> {
        let row = &self.rows[i];
        RecordRef {
            path: self.path(i),
            sha256: row.sha256,
            size: row.size,
            mode: row.mode,
            uid: row.uid,
            gid: row.gid,
            mtime: row.mtime,
        }
    }

    /// The index of the record with `path`; the table must be sorted by path.
    pub fn find_sorted(&self, path: &str) -> Option<usize> {
        PathOrder { order: None }.find(self, path)
    }

    /// Keeps only the records `keep` is true for, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&RecordRef) -> bool) {
        let mut kept = RecordTable::with_capacity(self.len());
        for record in self.iter().filter(|r| keep(r)) {
            kept.push(&record);
        }
        *self = kept;
    }

    /// Every record, in push order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Records by index: a [`RecordTable`] or the host's [`super::files::FileTable`].
pub trait Records {
    fn count(&self) -> usize;
    fn record(&self, i: usize) -> RecordRef<'_>;
}

impl Records for RecordTable {
    fn count(&self) -> usize {
        self.len()
    }

    fn record(&self, i: usize) -> RecordRef<'_> {
        self.get(i)
    }
}

/// Records serialized as the JSON array of [`FileRecord`]s they stand for (one made at a time).
pub struct AsFileRecords<'a, R>(pub &'a R);

impl<R: Records> Serialize for AsFileRecords<'_, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let table = self.0;
        serializer.collect_seq((0..table.count()).map(|i| table.record(i).to_record()))
    }
}

impl Serialize for RecordTable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AsFileRecords(self).serialize(serializer)
    }
}

/// A table's records in path order: the identity when the table is already sorted (the usual
/// case: no memory), else a sorted index of 4 bytes per record.
pub struct PathOrder {
    order: Option<Vec<u32>>,
}

impl PathOrder {
    pub fn of(table: &impl Records) -> PathOrder {
        let path = |i: usize| table.record(i).path;
        let sorted = (1..table.count()).all(|i| path(i - 1) <= path(i));
        let order = (!sorted).then(|| {
            let mut order: Vec<u32> = (0..table.count() as u32).collect();
            order.sort_by(|&a, &b| path(a as usize).cmp(path(b as usize)));
            order
        });
        PathOrder { order }
    }

    /// The index in the table of the `k`-th record in path order.
    pub fn at(&self, k: usize) -> usize {
        self.order.as_ref().map_or(k, |order| order[k] as usize)
    }

    /// The path-order position of the record with `path` in `table`, by binary search.
    pub fn find(&self, table: &RecordTable, path: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, table.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match table.path(self.at(mid)).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, byte: u8) -> FileRecord {
        FileRecord {
            path: path.into(),
            sha256: hex(&[byte; 32]),
            size: 7,
            mode: 0o1644,
            uid: 1,
            gid: 2,
            mtime: -3,
        }
    }

    #[test]
    fn records_round_trip_and_are_found_by_path() {
        let records = [record("etc/a", 1), record("etc/b/c", 2), record("", 3)];
        let table = RecordTable::from_records(&records).unwrap();
        let back: Vec<FileRecord> = table.iter().map(|r| r.to_record()).collect();
        assert_eq!(back, records);
        assert_eq!(table.path(1), "etc/b/c");
        let order = PathOrder::of(&table);
        let in_order: Vec<&str> = (0..3).map(|k| table.path(order.at(k))).collect();
        assert_eq!(in_order, ["", "etc/a", "etc/b/c"]);
        assert_eq!(order.find(&table, "etc/b/c").map(|k| order.at(k)), Some(1));
        assert_eq!(order.find(&table, "etc/b"), None);
    }

    #[test]
    fn retain_keeps_the_chosen_records_in_order() {
        let records = [record("etc/a", 1), record("etc/b", 2), record("etc/c", 3)];
        let mut table = RecordTable::from_records(&records).unwrap();
        table.retain(|r| r.path != "etc/b");
        let back: Vec<FileRecord> = table.iter().map(|r| r.to_record()).collect();
        assert_eq!(back, [records[0].clone(), records[2].clone()]);
    }

    #[test]
    fn a_malformed_digest_is_refused() {
        assert!(digest_of_hex(&"g".repeat(64)).is_none());
        assert!(digest_of_hex("abcd").is_none());
        let mut bad = record("etc/a", 1);
        bad.sha256.pop();
        assert!(RecordTable::from_records(&[bad]).is_none());
    }
}
