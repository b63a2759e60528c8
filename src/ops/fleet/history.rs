//! `history DIR`: per host of a copy store, each copy (time, build, files, the bundle's sha256
//! and size) and what changed from the one before (added, modified, removed paths).
//!
//! Streaming: one host at a time is read, oldest copy first, keeping only the previous copy's
//! records to compare the next with; each host's history is handed to the caller (who prints
//! it) before the next host is read, so memory is one host's, whatever the store holds. A copy
//! the hardened reader refuses is a warning and is skipped (the next one is compared with the
//! last readable one).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::store::{copies_in, host_dirs, CopyFile};
use crate::archive::bundle::read_bundle;
use crate::archive::{CheckOnly, Limits};
use crate::ops::archive_path::shown;
use crate::records::RecordTable;

/// One copy and its changes from the copy before it.
#[derive(Debug, Clone, Serialize)]
pub struct CopyEntry {
    pub path: PathBuf,
    /// UTC, ISO 8601 (from the stamp in the name).
    pub time: String,
    pub build: String,
    pub files: usize,
    /// Of the bundle file.
    pub sha256: String,
    pub size: u64,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
}

/// One host's copies, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct HostHistory {
    pub id: String,
    pub name: String,
    pub copies: Vec<CopyEntry>,
}

/// Reads the history of every host in `store` (or only the one whose id or name is `only`),
/// handing each to `each` in id order; returns the warnings.
pub fn history(
    store: &Path,
    only: Option<&str>,
    limits: &Limits,
    each: &mut dyn FnMut(HostHistory) -> Result<()>,
) -> Result<Vec<String>> {
    let (hosts, mut warnings) = host_dirs(store)?;
    for (id, dir) in hosts {
        let copies = match copies_in(&dir) {
            Ok(copies) => copies,
            Err(err) => {
                warnings.push(format!("{err:#}; host `{id}` was left out"));
                continue;
            }
        };
        let wanted = |name: &str| only.is_none_or(|only| only == id || only == name);
        if !copies.iter().any(|copy| wanted(&copy.host)) {
            continue;
        }
        let host = host_history(id, &copies, limits, &mut warnings);
        each(host)?;
    }
    Ok(warnings)
}

fn host_history(
    id: String,
    copies: &[CopyFile],
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> HostHistory {
    let mut previous = RecordTable::default();
    let mut entries = Vec::with_capacity(copies.len());
    let mut name = copies.last().map(|c| c.host.clone()).unwrap_or_default();
    for copy in copies {
        let read = match read_bundle(&copy.path, limits, &mut CheckOnly) {
            Ok(read) => read,
            Err(err) => {
                warnings.push(format!("copy refused: {err:#}"));
                continue;
            }
        };
        let mut files = read.state.files;
        sort_by_path(&mut files);
        let (added, modified, removed) = changes(&previous, &files);
        let (host, build) = read
            .state
            .manifest
            .map(|labels| (labels.host, labels.build))
            .unwrap_or_default();
        if !host.is_empty() {
            name = host;
        }
        entries.push(CopyEntry {
            path: shown(&copy.path),
            time: crate::clock::utc_iso(copy.time),
            build,
            files: files.len(),
            sha256: read.sha256,
            size: read.bytes,
            added,
            modified,
            removed,
        });
        previous = files;
    }
    entries.reverse();
    HostHistory {
        id,
        name,
        copies: entries,
    }
}

/// The table in path order (an archive's own order is usually that already).
fn sort_by_path(files: &mut RecordTable) {
    let sorted = (1..files.len()).all(|i| files.path(i - 1) < files.path(i));
    if sorted {
        return;
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|a, b| files.path(*a).cmp(files.path(*b)));
    let mut table = RecordTable::with_capacity(files.len());
    for i in order {
        table.push(&files.get(i));
    }
    *files = table;
}

/// Added, modified (content or restored metadata) and removed paths from `old` to `new`,
/// both sorted by path.
fn changes(old: &RecordTable, new: &RecordTable) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let order = match (i < old.len(), j < new.len()) {
            (true, true) => old.path(i).cmp(new.path(j)),
            (true, false) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                removed.push(old.path(i).to_string());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added.push(new.path(j).to_string());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if !old.get(i).same_state(&new.get(j)) {
                    modified.push(new.path(j).to_string());
                }
                i += 1;
                j += 1;
            }
        }
    }
    (added, modified, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordRef;

    fn table(rows: &[(&str, u8)]) -> RecordTable {
        let mut table = RecordTable::default();
        for (path, byte) in rows {
            table.push(&RecordRef {
                path,
                sha256: [*byte; 32],
                size: 1,
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
            });
        }
        table
    }

    #[test]
    fn changes_between_copies() {
        let old = table(&[("etc/a", 1), ("etc/b", 1), ("etc/c", 1)]);
        let new = table(&[("etc/b", 2), ("etc/c", 1), ("etc/d", 1)]);
        let (added, modified, removed) = changes(&old, &new);
        assert_eq!(
            (added, modified, removed),
            (
                vec!["etc/d".to_string()],
                vec!["etc/b".to_string()],
                vec!["etc/a".to_string()]
            )
        );
        let mut shuffled = table(&[("etc/z", 1), ("etc/a", 1)]);
        sort_by_path(&mut shuffled);
        assert_eq!(shuffled.path(0), "etc/a");
    }
}
