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
use crate::archive::{ArchiveSummary, FileRecord};

/// What restore does with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Overwrite,
    Unchanged,
}

/// One archived file and what restore does with it.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub record: FileRecord,
    pub action: Action,
}

/// The whole plan, in archive order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub files: Vec<PlannedFile>,
    /// Directory entries of the archive that do not exist yet (created 0755).
    pub new_directories: Vec<String>,
    /// Existing files the archive's manifest says to remove (an undo of created files), sorted.
    pub remove: Vec<String>,
}

impl Plan {
    /// The paths with `action`, sorted.
    pub fn paths(&self, action: Action) -> Vec<String> {
        let mut paths: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.action == action)
            .map(|f| f.record.path.clone())
            .collect();
        paths.sort();
        paths
    }

    /// The existing files applying the plan replaces or removes: what an undo archive saves.
    pub fn replaced(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|f| f.action == Action::Overwrite)
            .map(|f| f.record.path.as_str())
            .chain(self.remove.iter().map(String::as_str))
    }

    /// True when applying the plan writes nothing.
    pub fn is_noop(&self) -> bool {
        self.new_directories.is_empty()
            && self.remove.is_empty()
            && self.files.iter().all(|f| f.action == Action::Unchanged)
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
/// takes the summary's records (never copied: 100,000 of them are the largest thing a
/// restore holds). Refuses, naming it, a symlink or non-directory among a destination's
/// parents and a destination that is a directory, symlink or special file.
pub fn plan(placer: &Placer, summary: ArchiveSummary) -> Result<Plan> {
    let mut plan = Plan {
        files: Vec::with_capacity(summary.files.len()),
        new_directories: Vec::new(),
        remove: Vec::new(),
    };
    for record in summary.files.iter().map(|r| r.to_record()) {
        let action = plan_file(placer, &record)?;
        plan.files.push(PlannedFile { record, action });
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
