//! The change set: what differs between the host's persisted files and an archive.

use serde::Serialize;

use crate::records::{PathList, PathOrder, Records};

/// Paths added, modified (content, mode, uid, gid or mtime) and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    pub added: PathList,
    pub modified: PathList,
    pub removed: PathList,
}

impl ChangeSet {
    /// True when nothing needs saving.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Number of pending paths.
    pub fn len(&self) -> usize {
        self.added.len() + self.modified.len() + self.removed.len()
    }
}

/// Compares the current records with the archived ones: a merge of the two tables in path
/// order (both usually arrive sorted, so the orders are linear checks and take no memory).
pub fn compare(current: &impl Records, archived: &impl Records) -> ChangeSet {
    let (now, old) = (PathOrder::of(current), PathOrder::of(archived));
    let get_now = |i: usize| (i < current.count()).then(|| current.record(now.at(i)));
    let get_old = |j: usize| (j < archived.count()).then(|| archived.record(old.at(j)));
    let mut changes = ChangeSet::default();
    let (mut i, mut j) = (0, 0);
    loop {
        match (get_now(i), get_old(j)) {
            (Some(a), Some(b)) if a.path == b.path => {
                if !a.same_state(&b) {
                    changes.modified.push(a.path);
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.path < b.path => {
                changes.added.push(a.path);
                i += 1;
            }
            (Some(a), None) => {
                changes.added.push(a.path);
                i += 1;
            }
            (_, Some(b)) => {
                changes.removed.push(b.path);
                j += 1;
            }
            (None, None) => break,
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FileRecord, RecordTable};

    fn record(path: &str, sha: u8, mode: u32) -> FileRecord {
        FileRecord {
            path: path.into(),
            sha256: crate::records::hex(&[sha; 32]),
            size: 1,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
        }
    }

    #[test]
    fn every_kind_of_change_is_seen() {
        let archived = RecordTable::from_records(&[
            record("etc/gone", 4, 0o1644),
            record("etc/a", 1, 0o1644),
            record("etc/b", 2, 0o1644),
            record("etc/c", 3, 0o1644),
        ])
        .unwrap();
        let current = RecordTable::from_records(&[
            record("etc/a", 1, 0o1644),
            record("etc/b", 9, 0o1644),
            record("etc/c", 3, 0o1600),
            record("etc/new", 5, 0o1644),
        ])
        .unwrap();
        let changes = compare(&current, &archived);
        let list = |l: &PathList| l.iter().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(list(&changes.added), ["etc/new"]);
        assert_eq!(list(&changes.modified), ["etc/b", "etc/c"]);
        assert_eq!(list(&changes.removed), ["etc/gone"]);
        assert_eq!(changes.len(), 4);
        assert!(compare(&archived, &archived).is_empty());
    }
}
