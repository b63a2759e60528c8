//! Duplicate and file-versus-directory detection in memory bounded by the entry limit: names
//! are never kept here, only a keyed 64-bit hash of each entry's path and of each directory a
//! path implies (its ancestors), with a hard cap on how many directories an archive may imply.
//!
//! A conflict is found in whichever order its two members come: a file whose path is an
//! earlier member's ancestor, an entry below an earlier file, or the same path twice. The
//! hashes are keyed per run (SipHash with random keys), so an archive cannot be built to make
//! two names collide; an accidental collision (odds about n²/2^64, under 1e-8 at the caps)
//! could only refuse an archive, never let a conflict through.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

/// Directories implied by all entries together, per allowed entry (100,000 entries: 400,000
/// directories, about 5 MiB of hashes).
pub const DIRECTORIES_PER_ENTRY: u64 = 4;

/// What an entry is, as far as conflicts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    File,
    Directory,
}

pub struct NameIndex {
    keys: RandomState,
    entries: HashMap<u64, Node>,
    ancestors: HashSet<u64>,
    folded: HashSet<u64>,
    max_directories: usize,
}

/// Why an entry cannot join the others.
#[derive(Debug, PartialEq, Eq)]
pub enum Conflict {
    /// A message naming the conflicting paths.
    Refused(String),
    /// Only the case differs from an earlier entry (one file on a case-insensitive filesystem).
    CaseOnly(String),
    /// The archive implies more directories than the cap; the read stops.
    TooManyDirectories(usize),
}

impl NameIndex {
    pub fn new(max_entries: u64) -> NameIndex {
        let cap = max_entries.saturating_mul(DIRECTORIES_PER_ENTRY);
        NameIndex {
            keys: RandomState::new(),
            entries: HashMap::new(),
            ancestors: HashSet::new(),
            folded: HashSet::new(),
            max_directories: usize::try_from(cap).unwrap_or(usize::MAX),
        }
    }

    /// Adds the normalized `path`; says what it conflicts with, if anything.
    pub fn insert(&mut self, path: &str, node: Node) -> Result<(), Conflict> {
        let key = self.keys.hash_one(path);
        match self.entries.entry(key) {
            Entry::Occupied(_) => {
                return Err(Conflict::Refused(format!("duplicate member `{path}`")))
            }
            Entry::Vacant(slot) => {
                slot.insert(node);
            }
        }
        if node == Node::File && self.ancestors.contains(&key) {
            return Err(Conflict::Refused(format!(
                "`{path}` is a file and also the directory of an earlier member"
            )));
        }
        self.insert_ancestors(path)?;
        let folded = self.keys.hash_one(path.to_ascii_lowercase());
        if !self.folded.insert(folded) {
            return Err(Conflict::CaseOnly(format!(
                "`{path}` differs from an earlier member only in letter case (a \
                 case-insensitive filesystem holds them as one)"
            )));
        }
        Ok(())
    }

    /// Records every directory above `path`, longest first; stops at the first one already
    /// known (everything above it was recorded and checked with it).
    fn insert_ancestors(&mut self, path: &str) -> Result<(), Conflict> {
        let mut rest = path;
        while let Some((parent, _)) = rest.rsplit_once('/') {
            let key = self.keys.hash_one(parent);
            if !self.ancestors.insert(key) {
                return Ok(());
            }
            if self.ancestors.len() > self.max_directories {
                return Err(Conflict::TooManyDirectories(self.max_directories));
            }
            if self.entries.get(&key) == Some(&Node::File) {
                return Err(Conflict::Refused(format!(
                    "`{parent}` is both a file and the directory of `{path}`"
                )));
            }
            rest = parent;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<(), Conflict>) -> String {
        match result {
            Err(Conflict::Refused(message)) => message,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn finds_conflicts_in_either_order() {
        let mut index = NameIndex::new(10);
        index.insert("etc/a", Node::File).unwrap();
        let message = refused(index.insert("etc/a/b", Node::Directory));
        assert!(message.contains("`etc/a` is both a file"), "{message}");
        let mut index = NameIndex::new(10);
        index.insert("etc/a/b/c", Node::File).unwrap();
        refused(index.insert("etc/a", Node::File));
        index.insert("etc/a/b", Node::Directory).unwrap();
        refused(index.insert("etc/a/b", Node::Directory));
        refused(index.insert("etc/a/b/c", Node::File));
    }

    #[test]
    fn case_only_differences_are_told_apart() {
        let mut index = NameIndex::new(10);
        index.insert("etc/Hosts", Node::File).unwrap();
        assert!(matches!(
            index.insert("etc/hosts", Node::File),
            Err(Conflict::CaseOnly(_))
        ));
    }

    #[test]
    fn implied_directories_are_capped() {
        let mut index = NameIndex::new(1);
        let deep = (0..10)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join("/");
        assert_eq!(
            index.insert(&deep, Node::File),
            Err(Conflict::TooManyDirectories(4))
        );
    }
}
