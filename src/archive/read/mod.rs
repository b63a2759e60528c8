//! The one reader of `state.tgz`, used by every command that opens an archive: this module is
//! its entry points and what a read returns; [`outer`] walks `state.tgz` and picks the inner
//! layout by member names, [`inner`] checks and hashes the entries of `local.tgz`.
//!
//! # Security
//! Every archive is hostile until read to its end. Both gzip layers are drained so their CRC and
//! length are checked (tar iteration alone stops early), every member of a multi-member gzip
//! included (see [`super::gzip`]); the expansion budget, entry count and
//! header-size limits of [`Limits`] bound time and memory on any input; every member name goes
//! through [`normalize_member_name`]. An encrypted envelope is authenticated before a byte of
//! it is decrypted (see [`super::envelope`]). Problems that leave the archive readable (unsafe names,
//! links, devices, setuid bits, duplicates, manifest mismatches, trailing data) are collected with
//! a level instead of stopping the read; writers (extract, restore) refuse on any error-level one.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::entries::{EntryMeta, WalkError};
use super::envelope::Encryption;
use super::names::display_name;
use super::streams::{Budget, OVER_BUDGET};
use super::{FileRecord, Level, Limits, Manifest, Problem};
use crate::error::Error;

pub use super::entries::EntryKind;

mod inner;
mod outer;

/// Largest manifest accepted (a 100,000-file manifest is about 25 MiB).
const MAX_MANIFEST: u64 = 48 << 20;

/// An entry of `local.tgz` as the visitor sees it.
#[derive(Debug, Clone)]
pub struct InnerEntry {
    pub meta: EntryMeta,
    /// The normalized root-relative path, or why the name is unsafe.
    pub path: Result<String, String>,
}

impl InnerEntry {
    /// The name for display: normalized when safe, escaped raw otherwise.
    pub fn name(&self) -> String {
        match &self.path {
            Ok(path) => path.clone(),
            Err(_) => display_name(&self.meta.raw_name),
        }
    }
}

/// Called for every entry of `local.tgz`, safe or not, in archive order; `data` yields the
/// content of regular files. What the visitor leaves unread is drained and hashed after it.
pub trait Visitor {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()>;
}

/// A visitor that only lets the reader check and hash.
pub struct CheckOnly;

impl Visitor for CheckOnly {
    fn entry(&mut self, _entry: &InnerEntry, _data: &mut dyn Read) -> Result<()> {
        Ok(())
    }
}

/// What a complete read found.
#[derive(Debug, Clone)]
pub struct ArchiveSummary {
    pub archive: PathBuf,
    /// Safe regular files with the sha256 of their actual content, in archive order.
    pub files: Vec<FileRecord>,
    /// Safe directory entries.
    pub directories: Vec<String>,
    pub manifest: Option<Manifest>,
    pub problems: Vec<Problem>,
    /// Size and sha256 of the archive file itself.
    pub bytes: u64,
    pub sha256: String,
    /// The key store and envelope header of the encrypted layout; `None` for plain `local.tgz`.
    pub encryption: Option<Encryption>,
}

impl ArchiveSummary {
    pub fn first_error(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.level == Level::Error)
    }

    /// Fails with the first error-level problem, naming the archive: the gate of every writer.
    pub fn ensure_safe(&self) -> Result<()> {
        match self.first_error() {
            Some(problem) => Err(Error::UnsafeArchive {
                archive: self.archive.clone(),
                reason: format!("{}; nothing was written", problem.message),
            }
            .into()),
            None => Ok(()),
        }
    }
}

/// Opens and reads the archive at `path` completely.
pub fn read_archive(
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    let file = open_archive(path)?;
    read_archive_from(file, path, limits, visitor)
}

/// Opens an archive for reading, refusing directories with a clear message.
pub fn open_archive(path: &Path) -> Result<File> {
    let file =
        File::open(path).with_context(|| format!("cannot open archive `{}`", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat archive `{}`", path.display()))?;
    if meta.is_dir() {
        return Err(Error::BadArchive {
            archive: path.to_path_buf(),
            reason: "it is a directory; name the state.tgz file inside it".into(),
        }
        .into());
    }
    Ok(file)
}

/// Reads an already open archive completely; `path` is used in messages.
pub fn read_archive_from(
    file: File,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    read_archive_stream(file, path, limits, visitor)
}

/// Reads an archive from any byte stream (the fuzz target's entry point); `path` names it in
/// messages.
pub fn read_archive_stream<R: Read>(
    file: R,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    let mut state = ReadState {
        limits: *limits,
        budget: Budget::new(limits.max_expanded),
        visitor,
        files: Vec::new(),
        directories: Vec::new(),
        seen: HashSet::new(),
        problems: Vec::new(),
        manifest: None,
        inner_seen: false,
        sealed: outer::SealedParts::default(),
    };
    let outcome = outer::read_layers(file, &mut state);
    let (bytes, sha256) = match outcome {
        Ok(done) => done,
        Err(WalkError::Visitor(err)) => return Err(err),
        Err(WalkError::Format(reason)) => {
            return Err(Error::BadArchive {
                archive: path.to_path_buf(),
                reason: explain(reason, limits),
            }
            .into())
        }
    };
    state.finish_checks();
    Ok(ArchiveSummary {
        archive: path.to_path_buf(),
        files: state.files,
        directories: state.directories,
        manifest: state.manifest,
        problems: state.problems,
        bytes,
        sha256,
        encryption: state.sealed.encryption,
    })
}

fn explain(reason: String, limits: &Limits) -> String {
    if reason.contains(OVER_BUDGET) {
        format!(
            "its content expands beyond {} bytes; if you trust it, raise the limit with --max-size",
            limits.max_expanded
        )
    } else {
        reason
    }
}

/// What one read accumulates, shared by the outer and inner layers.
struct ReadState<'v> {
    limits: Limits,
    budget: Budget,
    visitor: &'v mut dyn Visitor,
    files: Vec<FileRecord>,
    directories: Vec<String>,
    seen: HashSet<String>,
    problems: Vec<Problem>,
    manifest: Option<Manifest>,
    inner_seen: bool,
    /// The encrypted layout's members, gathered in any order.
    sealed: outer::SealedParts,
}
