//! Applying a restore plan: the second read of the same open archive, placing each planned
//! file through the [`Placer`] while checking that its content is what was planned.
//!
//! The plan was made from a first complete read. Between the two reads the archive could
//! change under us (it is the same open file, but someone could write into it), so every
//! placed file is hashed while it streams into its temp file, and a sha256 or size different
//! from the plan fails the copy before the rename: the old file stays, nothing half-written
//! is ever renamed into place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::place::Placer;
use super::plan::{meta_of, Action, Plan};
use crate::archive::{read_archive_from, writer::hex, EntryKind, InnerEntry, Limits, Visitor};

/// Writes every `create` and `overwrite` file of `plan` (and its new directories) from
/// `archive`, which is rewound and read once more.
pub fn apply(
    placer: &Placer,
    plan: &Plan,
    mut archive: File,
    path: &Path,
    limits: &Limits,
) -> Result<usize> {
    for dir in &plan.new_directories {
        placer.make_dir(dir)?;
    }
    archive
        .rewind()
        .with_context(|| format!("cannot rewind archive `{}`", path.display()))?;
    let mut visitor = PlaceVisitor {
        placer,
        pending: plan
            .files
            .iter()
            .filter(|f| f.action != Action::Unchanged)
            .map(|f| (f.record.path.as_str(), f))
            .collect(),
        placed: 0,
    };
    let summary = read_archive_from(archive, path, limits, &mut visitor)?;
    summary.ensure_safe()?;
    if let Some(missing) = visitor.pending.keys().next() {
        bail!(
            "archive `{}` changed during the restore: `{missing}` was not found again; \
             the files already restored stay; run the restore again",
            path.display()
        );
    }
    Ok(visitor.placed)
}

struct PlaceVisitor<'a> {
    placer: &'a Placer,
    pending: HashMap<&'a str, &'a super::plan::PlannedFile>,
    placed: usize,
}

impl Visitor for PlaceVisitor<'_> {
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
        self.placer.place(path, &mut checked, &meta)?;
        self.placed += 1;
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
