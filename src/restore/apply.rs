//! Applying a restore plan in two phases. *Stage*: the second read of the same open archive
//! writes every `create` and `overwrite` file to a temp file beside its destination,
//! checking that its content is what was planned, and then makes all of them durable at once
//! (the placer is batched: one `syncfs` per filesystem, [`crate::durable`]). *Commit*: only
//! when all of them are on disk, each is renamed into place, then the files the plan removes
//! are removed, and the renames and removals are flushed before the restore reports success.
//! A crash at any instant leaves each file old or new.
//!
//! The plan was made from a first complete read. Between the two reads the archive could
//! change under us (it is the same open file, but someone could write into it), so every
//! staged file is hashed while it streams into its temp file, and a sha256 or size different
//! from the plan fails the stage. A stage that fails for any reason (that, a full filesystem,
//! an I/O error) removes its temp files and the directories it created: the root is left
//! exactly as it was. Renames need no space, so once staged, a restore completes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::place::{Placer, Staged};
use super::plan::{meta_of, Action, Plan};
use crate::archive::{read_archive_from, writer::hex, EntryKind, InnerEntry, Limits, Visitor};

/// Every changed file of a plan, written beside its destination and not yet in place. Dropped
/// without [`StagedRestore::commit`], it removes its temp files and new directories.
pub struct StagedRestore<'a> {
    placer: &'a Placer,
    files: Vec<Staged>,
    committed: bool,
}

/// Stages every `create` and `overwrite` file of `plan` (and its new directories) from
/// `archive`, which is rewound and read once more, and flushes them to disk. On error nothing
/// under the root changed.
pub fn stage<'a>(
    placer: &'a Placer,
    plan: &Plan,
    mut archive: File,
    path: &Path,
    limits: &Limits,
) -> Result<StagedRestore<'a>> {
    let mut visitor = PlaceVisitor {
        placer,
        pending: plan
            .files
            .iter()
            .filter(|f| f.action != Action::Unchanged)
            .map(|f| (f.record.path.as_str(), f))
            .collect(),
        staged: StagedRestore {
            placer,
            files: Vec::new(),
            committed: false,
        },
    };
    for dir in &plan.new_directories {
        placer.make_dir(dir)?;
    }
    archive
        .rewind()
        .with_context(|| format!("cannot rewind archive `{}`", path.display()))?;
    let summary = read_archive_from(archive, path, limits, &mut visitor)?;
    summary.ensure_safe()?;
    if let Some(missing) = visitor.pending.keys().next() {
        bail!(
            "archive `{}` changed during the restore: `{missing}` was not found again; \
             run the restore again",
            path.display()
        );
    }
    placer.flush()?;
    Ok(visitor.staged)
}

impl StagedRestore<'_> {
    /// Renames every staged file into place, then removes the files in `remove`, and flushes
    /// both; returns how many files were placed. What was placed since the stage (the undo
    /// archive) is flushed before the first rename. A failure here (rare: a rename needs no
    /// space) leaves the files before it restored, so the error points at `undo`.
    pub fn commit(mut self, remove: &[String], undo: Option<&Path>) -> Result<usize> {
        self.placer.flush()?;
        self.committed = true;
        let files = std::mem::take(&mut self.files);
        for (done, staged) in files.iter().enumerate() {
            if let Err(err) = self.placer.commit(staged) {
                for left in &files[done..] {
                    self.placer.discard(left);
                }
                return Err(stopped(err, undo));
            }
        }
        for path in remove {
            self.placer
                .remove_file(path)
                .map_err(|err| stopped(err, undo))?;
        }
        self.placer
            .flush()
            .context("the restored files may not survive a power loss; run the restore again")?;
        Ok(files.len())
    }
}

/// An error of the commit phase, pointing at what undoes the part already done.
fn stopped(err: anyhow::Error, undo: Option<&Path>) -> anyhow::Error {
    match undo {
        Some(undo) => err.context(format!(
            "the restore stopped part way; `statectl restore {}` puts the overwritten files \
             back",
            undo.display()
        )),
        None => err.context("the restore stopped part way; run it again"),
    }
}

impl Drop for StagedRestore<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for staged in &self.files {
                self.placer.discard(staged);
            }
            self.placer.remove_created_dirs();
        }
    }
}

struct PlaceVisitor<'a, 'p> {
    placer: &'a Placer,
    pending: HashMap<&'p str, &'p super::plan::PlannedFile>,
    staged: StagedRestore<'a>,
}

impl Visitor for PlaceVisitor<'_, '_> {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let (Ok(path), EntryKind::File) = (&entry.path, entry.meta.kind) else {
            return Ok(());
        };
        let Some(planned) = self.pending.remove(path.as_str()) else {
            return Ok(());
        };
        let record = &planned.record;
        let meta = meta_of(record);
        if entry.meta.mode != meta.mode
            || entry.meta.uid != meta.uid
            || entry.meta.gid != meta.gid
            || entry.meta.mtime != meta.mtime
        {
            bail!("`{path}` changed in the archive since the plan was made; run the restore again");
        }
        let mut checked = Checked {
            inner: data,
            hasher: Sha256::new(),
            left: record.size,
            expected: &record.sha256,
            done: false,
        };
        let staged = self.placer.stage(path, &mut checked, &meta)?;
        self.staged.files.push(staged);
        Ok(())
    }
}

/// Passes content through, and fails at its end when it is not exactly what the plan holds.
struct Checked<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    left: u64,
    expected: &'a str,
    done: bool,
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let got = self.inner.read(buf)?;
        if got == 0 {
            self.done = true;
            let digest = hex(&std::mem::take(&mut self.hasher).finalize());
            if self.left != 0 || digest != self.expected {
                return Err(io::Error::other(
                    "content differs from the planned restore (the archive changed); \
                     run the restore again",
                ));
            }
            return Ok(0);
        }
        self.hasher.update(&buf[..got]);
        self.left = self.left.checked_sub(got as u64).ok_or_else(|| {
            io::Error::other("content is longer than planned (the archive changed)")
        })?;
        Ok(got)
    }
}
