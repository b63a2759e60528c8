//! The restore plan: for every file of a validated archive, `create`, `overwrite` or
//! `unchanged`, decided by looking at the target through the [`Placer`] (never through a link).
//!
//! `restore --dry-run` prints exactly this plan, and the real run applies exactly this plan, so
//! what the operator reviewed is what happens. A file counts as unchanged only when its content
//! (sha256, read through a descriptor opened without following links) and its restored metadata
//! (all 12 mode bits, uid, gid, mtime) match the archive. An undo archive also lists, in its
//! manifest's `remove`, the files the restore it undoes created: those that exist (as regular
//! files) are planned for removal.

use std::io::Read;

use anyhow::{bail, Result};
use serde::Serialize;

use super::place::{Existing, FileMeta, Placer};
use crate::archive::streams::HashingReader;
use crate::archive::ArchiveSummary;
use crate::records::{FileRecord, PathList};

/// What restore does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Overwrite,
    Unchanged,
}

/// The files of a plan in archive order: every path in one arena, and what restore does with
/// each (a few bytes per file plus its name, where the archive's records cost about 130).
#[derive(Debug, Clone, Default)]
pub struct PlannedFiles {
    paths: PathList,
    actions: Vec<Action>,
}

impl PlannedFiles {
    /// An empty list with room for `files` paths of `name_bytes` bytes together.
    fn with_capacity(files: usize, name_bytes: usize) -> PlannedFiles {
        PlannedFiles {
            paths: PathList::with_capacity(files, name_bytes),
            actions: Vec::with_capacity(files),
        }
    }

    fn push(&mut self, path: &str, action: Action) {
        self.paths.push(path);
        self.actions.push(action);
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// The path of file `i` (archive order).
    pub fn path(&self, i: usize) -> &str {
        self.paths.get(i)
    }

    /// What restore does with file `i`.
    pub fn action(&self, i: usize) -> Action {
        self.actions[i]
    }

    /// Every file and its action, in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Action)> + '_ {
        (0..self.len()).map(|i| (self.path(i), self.actions[i]))
    }

    /// How many files have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.actions.iter().filter(|a| **a == action).count()
    }

    /// The paths with `action`, sorted (archive order is usually sorted already).
    pub fn sorted(&self, action: Action) -> Vec<&str> {
        let mut paths: Vec<&str> = self
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(path, _)| path)
            .collect();
        if !paths.is_sorted() {
            paths.sort_unstable();
        }
        paths
    }
}

/// The whole plan, in archive order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub files: PlannedFiles,
    /// Directory entries of the archive that do not exist yet (created 0755).
    pub new_directories: Vec<String>,
    /// Existing files the archive's manifest says to remove (an undo of created files), sorted.
    pub remove: Vec<String>,
    /// The sha256 of the archive planned from: the second read must find the same bytes.
    pub archive_sha256: String,
}

impl Plan {
    /// The paths with `action`, sorted.
    pub fn paths(&self, action: Action) -> Vec<String> {
        let sorted = self.files.sorted(action);
        sorted.into_iter().map(str::to_string).collect()
    }

    /// The existing files applying the plan replaces or removes: what an undo archive saves.
    pub fn replaced(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|(_, action)| *action == Action::Overwrite)
            .map(|(path, _)| path)
            .chain(self.remove.iter().map(String::as_str))
    }

    /// True when applying the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.new_directories.is_empty()
            && self.remove.is_empty()
            && self.files.actions.iter().all(|a| *a == Action::Unchanged)
    }
}

/// The metadata a restored file gets.
pub fn meta_of(record: &FileRecord) -> FileMeta {
    FileMeta {
        mode: record.mode,
        uid: record.uid,
        gid: record.gid,
        mtime: record.mtime,
    }
}

/// Plans the restore of a validated archive (`summary.ensure_safe()` passed) under `placer`;
/// takes the summary and drops its records as soon as they are planned (100,000 of them are
/// the largest thing a restore holds; the plan keeps only paths and actions). Refuses, naming
/// it, a symlink or non-directory among a destination's parents and a destination that is a
/// directory, symlink or special file.
pub fn plan(placer: &Placer, summary: ArchiveSummary) -> Result<Plan> {
    let name_bytes = summary.files.iter().map(|f| f.path.len()).sum();
    let mut plan = Plan {
        files: PlannedFiles::with_capacity(summary.files.len(), name_bytes),
        new_directories: Vec::new(),
        remove: Vec::new(),
        archive_sha256: summary.sha256,
    };
    for record in summary.files.iter().map(|r| r.to_record()) {
        let action = plan_file(placer, &record)?;
        plan.files.push(&record.path, action);
    }
    for dir in summary.directories {
        match placer.existing(&dir)? {
            Existing::Absent => plan.new_directories.push(dir),
            // `Placer::existing` names a directory this way.
            Existing::Other("a directory") => {}
            // A directory link that resolves to a directory inside the root (walked through).
            Existing::Other("a symlink") if placer.is_directory(&dir)? => {}
            Existing::File { .. } => refuse(placer, &dir, "a regular file")?,
            Existing::Other(kind) => refuse(placer, &dir, kind)?,
        }
    }
    let listed = summary.manifest.iter().flat_map(|m| &m.remove);
    for path in listed {
        match placer.existing(path)? {
            Existing::File { .. } => plan.remove.push(path.clone()),
            Existing::Absent => {}
            Existing::Other(kind) => bail!(
                "`{}` is {kind}, where the archive says to remove a file; nothing was written; \
                 move it aside and run the restore again",
                placer.root().join(path).display()
            ),
        }
    }
    plan.remove.sort();
    plan.remove.dedup();
    Ok(plan)
}

fn plan_file(placer: &Placer, record: &FileRecord) -> Result<Action> {
    match placer.existing(&record.path)? {
        Existing::Absent => Ok(Action::Create),
        Existing::Other(kind) => refuse(placer, &record.path, kind),
        Existing::File { meta, size } => {
            if meta != meta_of(record) || size != record.size {
                return Ok(Action::Overwrite);
            }
            let file = placer.open_existing(&record.path)?;
            let mut hashing = HashingReader::new(file);
            std::io::copy(&mut hashing.by_ref(), &mut std::io::sink()).map_err(|err| {
                anyhow::anyhow!(
                    "cannot read `{}`: {err}",
                    placer.root().join(&record.path).display()
                )
            })?;
            if hashing.hex_digest() == record.sha256 {
                Ok(Action::Unchanged)
            } else {
                Ok(Action::Overwrite)
            }
        }
    }
}

fn refuse<T>(placer: &Placer, rel: &str, kind: &str) -> Result<T> {
    bail!(
        "`{}` is {kind}, where the archive has a {}; nothing was written; move it aside \
         and run the restore again",
        placer.root().join(rel).display(),
        if kind == "a regular file" {
            "directory"
        } else {
            "file"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_files_keep_archive_order_and_give_each_action_sorted() {
        let mut files = PlannedFiles::with_capacity(4, 0);
        for (path, action) in [
            ("etc/z", Action::Create),
            ("etc/b", Action::Unchanged),
            ("etc/a", Action::Create),
            ("etc/c", Action::Overwrite),
        ] {
            files.push(path, action);
        }
        assert_eq!(files.len(), 4);
        assert_eq!((files.path(2), files.action(2)), ("etc/a", Action::Create));
        assert_eq!(files.sorted(Action::Create), ["etc/a", "etc/z"]);
        assert_eq!(files.count(Action::Create), 2);
        assert_eq!(files.sorted(Action::Overwrite), ["etc/c"]);
        let plan = Plan {
            files,
            remove: vec!["etc/old".into()],
            ..Plan::default()
        };
        assert_eq!(plan.replaced().collect::<Vec<_>>(), ["etc/c", "etc/old"]);
        assert!(!plan.is_noop());
    }
}
