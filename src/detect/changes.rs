//! The change set: what differs between the host's persisted files and an archive.

use serde::Serialize;

use crate::archive::FileRecord;

/// Paths added, modified (content, mode, uid, gid or mtime) and removed, plus the branched ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    /// Files with a `.#` sibling; informational, never pending by themselves.
    pub branched: Vec<String>,
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

/// Compares the current records with the archived ones: a merge of the two lists sorted by
/// path (both usually arrive sorted, so the sorts are linear checks).
pub fn compare(
    current: &[FileRecord],
    archived: &[FileRecord],
    branched: Vec<String>,
) -> ChangeSet {
    let now = sorted_refs(current);
    let old = sorted_refs(archived);
    let mut changes = ChangeSet {
        branched,
        ..ChangeSet::default()
    };
    let (mut i, mut j) = (0, 0);
    while i < now.len() || j < old.len() {
        match (now.get(i), old.get(j)) {
            (Some(a), Some(b)) if a.path == b.path => {
                if !a.same_state(b) {
                    changes.modified.push(a.path.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.path < b.path => {
                changes.added.push(a.path.clone());
                i += 1;
            }
            (Some(a), None) => {
                changes.added.push(a.path.clone());
                i += 1;
            }
            (_, Some(b)) => {
                changes.removed.push(b.path.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    changes
}

fn sorted_refs(records: &[FileRecord]) -> Vec<&FileRecord> {
    let mut refs: Vec<&FileRecord> = records.iter().collect();
    if !refs.is_sorted_by(|a, b| a.path <= b.path) {
        refs.sort_by(|a, b| a.path.cmp(&b.path));
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, sha: &str, mode: u32) -> FileRecord {
        FileRecord {
            path: path.into(),
            sha256: sha.into(),
            size: 1,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
        }
    }

    #[test]
    fn every_kind_of_change_is_seen() {
        let archived = [
            record("etc/a", "1", 0o1644),
            record("etc/b", "2", 0o1644),
            record("etc/c", "3", 0o1644),
            record("etc/gone", "4", 0o1644),
        ];
        let current = [
            record("etc/a", "1", 0o1644),
            record("etc/b", "changed", 0o1644),
            record("etc/c", "3", 0o1600),
            record("etc/new", "5", 0o1644),
        ];
        let changes = compare(&current, &archived, vec![]);
        assert_eq!(changes.added, ["etc/new"]);
        assert_eq!(changes.modified, ["etc/b", "etc/c"]);
        assert_eq!(changes.removed, ["etc/gone"]);
        assert_eq!(changes.len(), 4);
        assert!(compare(&archived, &archived, vec!["etc/a".into()]).is_empty());
    }
}
