//! Applying a restore plan in two phases. *Stage*: the second read of the same open archive
//! (inflated ahead in a reader thread, [`reread_ahead`]) writes every `create` and `overwrite`
//! file to a temp file beside its destination, checking that its content is what was planned,
//! and then makes all of them durable at once
//! (the placer is batched: one `syncfs` per filesystem, [`crate::fs::durable`]). *Commit*: only
//! when all of them are on disk, each is renamed into place, then the files the plan removes
//! are removed, and the renames and removals are flushed before the restore reports success.
//! A crash at any instant leaves each file old or new.
//!
//! The plan was made from a first complete read. Between the two reads the archive could
//! change under us (it is a private copy, but the same open file), so the second read must
//! show every planned file at its place in archive order, and at its end the archive's sha256
//! must be the one planned from (every byte of every entry, names, metadata and content, is
//! the same as planned), or the stage fails. A stage that fails for any reason (that, a full
//! filesystem, an I/O error) removes its temp files and the directories it created: the root
//! is left exactly as it was. Renames need no space, so once staged, a restore completes.
//!
//! # Memory
//! Nothing per file is kept beyond the plan's path and action: the files staged are the plan's
//! changed files, in its order, and their temp files are numbered in that order ([`TempSeq`]).

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use anyhow::{Context, Result};

use super::place::{FileMeta, Placer};
use super::plan::{Action, Plan, PlannedFiles};
use super::temps::{TempId, TempSeq};
use crate::archive::{reread_ahead, EntryKind, InnerEntry, Limits, Visitor};

/// Every changed file of a plan, written beside its destination and not yet in place. Dropped
/// without [`StagedRestore::commit`], it removes its temp files and new directories.
pub struct StagedRestore<'a> {
    placer: &'a Placer,
    files: &'a PlannedFiles,
    /// The temp file of each staged file: the plan's files that are not unchanged, in order.
    temps: TempSeq,
    committed: bool,
}

/// Stages every `create` and `overwrite` file of `plan` (and its new directories) from
/// `archive`, which is rewound and read once more, and flushes them to disk. On error nothing
/// under the root changed.
pub fn stage<'a>(
    placer: &'a Placer,
    plan: &'a Plan,
    mut archive: File,
    path: &Path,
    limits: &Limits,
) -> Result<StagedRestore<'a>> {
    let mut visitor = PlaceVisitor {
        placer,
        next: 0,
        archive: path,
        staged: StagedRestore {
            placer,
            files: &plan.files,
            temps: TempSeq::default(),
            committed: false,
        },
    };
    for dir in &plan.new_directories {
        placer.make_dir(dir)?;
    }
    archive
        .rewind()
        .with_context(|| format!("cannot rewind archive `{}`", path.display()))?;
    let summary = reread_ahead(archive, path, limits, &mut visitor)?;
    summary.ensure_safe()?;
    if visitor.next != plan.files.len() || summary.sha256 != plan.archive_sha256 {
        return Err(changed_archive(path));
    }
    drop(summary);
    placer.flush()?;
    Ok(visitor.staged)
}

fn changed_archive(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "archive `{}` changed during the restore; run the restore again",
        path.display()
    )
}

impl StagedRestore<'_> {
    /// Renames every staged file into place, then removes the files in `remove`, and flushes
    /// both; returns how many files were placed. What was placed since the stage (the undo
    /// archive) is flushed before the first rename. A failure here (rare: a rename needs no
    /// space) leaves the files before it restored, so the error points at `undo`.
    pub fn commit(mut self, remove: &[String], undo: Option<&Path>) -> Result<usize> {
        self.placer.flush()?;
        self.committed = true;
        for (done, (rel, temp)) in self.staged().enumerate() {
            if let Err(err) = self.placer.commit(rel, temp) {
                for (left, temp) in self.staged().skip(done) {
                    self.placer.discard(left, temp);
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
        Ok(self.temps.len())
    }

    /// Each staged file's path and temp file, in plan order.
    fn staged(&self) -> impl Iterator<Item = (&str, TempId)> + '_ {
        let changed = self.files.iter().filter(|(_, a)| *a != Action::Unchanged);
        changed.map(|(rel, _)| rel).zip(self.temps.iter())
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
            for (rel, temp) in self.staged() {
                self.placer.discard(rel, temp);
            }
            self.placer.remove_created_dirs();
        }
    }
}

struct PlaceVisitor<'a, 'p> {
    placer: &'a Placer,
    /// The plan index of the next file the archive should show.
    next: usize,
    archive: &'p Path,
    staged: StagedRestore<'a>,
}

impl Visitor for PlaceVisitor<'_, '_> {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let (Ok(path), EntryKind::File) = (&entry.path, entry.meta.kind) else {
            return Ok(());
        };
        let files = self.staged.files;
        let index = self.next;
        if index >= files.len() || files.path(index) != path {
            return Err(changed_archive(self.archive));
        }
        self.next += 1;
        if files.action(index) == Action::Unchanged {
            return Ok(());
        }
        // The entry's own metadata: the sha256 of the whole archive, checked at its end,
        // proves it is the one planned.
        let meta = FileMeta {
            mode: entry.meta.mode,
            uid: entry.meta.uid,
            gid: entry.meta.gid,
            mtime: entry.meta.mtime,
        };
        let temp = self.placer.stage(path, data, &meta)?;
        self.staged.temps.push(temp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::archive::{read_archive, write_archive, ArchiveLabel, CheckOnly, SourceFile};
    use crate::restore::plan;

    /// A `state.tgz` in `dir` of the files `(path, content)`, named `name`.
    fn archive_of(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let sources: Vec<SourceFile> = files
            .iter()
            .map(|(path, content)| {
                let abs = dir.join(name).with_extension("src").join(path);
                std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
                std::fs::write(&abs, content).unwrap();
                SourceFile {
                    path: path.to_string(),
                    abs,
                }
            })
            .collect();
        let out = dir.join(name);
        let label = ArchiveLabel {
            host: "h".into(),
            build: String::new(),
        };
        write_archive(File::create(&out).unwrap(), &sources, &label, dir).unwrap();
        out
    }

    fn plan_of(placer: &Placer, archive: &Path) -> Plan {
        let summary = read_archive(archive, &Limits::default(), &mut CheckOnly).unwrap();
        summary.ensure_safe().unwrap();
        plan::plan(placer, summary).unwrap()
    }

    /// Every entry under `root`, relative, sorted.
    fn tree(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                found.push(path.strip_prefix(root).unwrap().display().to_string());
                if path.is_dir() {
                    dirs.push(path);
                }
            }
        }
        found.sort();
        found
    }

    /// A work directory for archives, and a root holding `etc/b`.
    fn scene() -> (tempfile::TempDir, tempfile::TempDir) {
        let work = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/b"), "old").unwrap();
        (work, root)
    }

    #[test]
    fn staged_files_take_their_places_in_plan_order_and_a_second_plan_is_a_noop() {
        let (work, root) = scene();
        let files = [("etc/a", "A"), ("etc/b", "B"), ("etc/d/c", "C")];
        let archive = archive_of(work.path(), "state.tgz", &files);
        let placer = Placer::open_batched(root.path()).unwrap();
        let plan = plan_of(&placer, &archive);
        assert_eq!(plan.files.count(Action::Create), 2);
        assert_eq!(plan.files.sorted(Action::Overwrite), ["etc/b"]);
        let staged = stage(
            &placer,
            &plan,
            File::open(&archive).unwrap(),
            &archive,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(staged.commit(&[], None).unwrap(), 3);
        for (path, content) in files {
            assert_eq!(
                std::fs::read_to_string(root.path().join(path)).unwrap(),
                content
            );
        }
        assert_eq!(
            tree(root.path()),
            ["etc", "etc/a", "etc/b", "etc/d", "etc/d/c"]
        );
        assert!(plan_of(&placer, &archive).is_noop());
    }

    #[test]
    fn a_second_read_of_another_archive_stages_nothing_and_leaves_the_root_as_it_was() {
        let (work, root) = scene();
        let planned = archive_of(
            work.path(),
            "planned.tgz",
            &[("etc/a", "A"), ("etc/n/b", "B")],
        );
        let same_names = archive_of(
            work.path(),
            "other.tgz",
            &[("etc/a", "X"), ("etc/n/b", "B")],
        );
        let fewer = archive_of(work.path(), "fewer.tgz", &[("etc/a", "A")]);
        let placer = Placer::open_batched(root.path()).unwrap();
        let plan = plan_of(&placer, &planned);
        let before = tree(root.path());
        for other in [same_names, fewer] {
            let file = File::open(&other).unwrap();
            let err = stage(&placer, &plan, file, &other, &Limits::default())
                .err()
                .expect("another archive must not stage");
            assert!(
                format!("{err:#}").contains("changed during the restore"),
                "{err:#}"
            );
            assert_eq!(tree(root.path()), before);
        }
    }
}
