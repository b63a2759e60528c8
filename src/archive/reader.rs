//! The one reader of `state.tgz`, used by every command that opens an archive.
//!
//! # Security
//! Every archive is hostile until read to its end. Both gzip layers are drained so their CRC and
//! length are checked (tar iteration alone stops early), every member of a multi-member gzip
//! included (see [`super::gzip`]); the expansion budget, entry count and
//! header-size limits of [`Limits`] bound time and memory on any input; every member name goes
//! through [`normalize_member_name`]. Problems that leave the archive readable (unsafe names,
//! links, devices, setuid bits, duplicates, manifest mismatches, trailing data) are collected with
//! a level instead of stopping the read; writers (extract, restore) refuse on any error-level one.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::entries::{walk, EntryMeta, WalkError};
use super::gzip::GzMembers;
use super::manifest::compare_manifest;
use super::names::{display_name, is_root_name, normalize_member_name};
use super::streams::{describe_io, drain, Budget, Budgeted, HashingReader, Tracked, OVER_BUDGET};
use super::{FileRecord, Level, Limits, Manifest, Problem, INNER_NAME, MANIFEST_NAME};
use crate::error::Error;

pub use super::entries::EntryKind;

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
    };
    let outcome = read_layers(file, &mut state);
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
}

fn read_layers<R: Read>(file: R, state: &mut ReadState<'_>) -> Result<(u64, String), WalkError> {
    let format = |layer: &str, err: std::io::Error| {
        WalkError::Format(format!("{layer}: {}", describe_io(&err)))
    };
    let mut hashed = BufReader::with_capacity(64 << 10, HashingReader::new(file));
    let gz = GzMembers::new(&mut hashed);
    let budget = state.budget.clone();
    let limits = state.limits;
    let mut rest = walk(
        Budgeted::new(gz, budget),
        &limits,
        "state.tgz",
        |meta, data| state.outer_member(meta, data),
    )?;
    let (_, nonzero) = drain(&mut rest).map_err(|e| format("state.tgz", e))?;
    if nonzero {
        state.problems.push(Problem::warning(
            "state.tgz: non-zero data after the end of the tar archive",
        ));
    }
    drop(rest);
    let (trailing, _) = drain(&mut hashed).map_err(|e| format("state.tgz", e))?;
    if trailing > 0 {
        state.problems.push(Problem::warning(format!(
            "state.tgz: {trailing} bytes of trailing data after the gzip stream"
        )));
    }
    let hashing = hashed.into_inner();
    let bytes = hashing.bytes;
    Ok((bytes, hashing.hex_digest()))
}

/// The `./` entry GNU tar writes first for `tar -C dir -czf x .`: skipped in both layers.
fn is_top_directory(meta: &EntryMeta) -> bool {
    meta.kind == EntryKind::Directory && is_root_name(&meta.raw_name)
}

impl ReadState<'_> {
    fn outer_member(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if is_top_directory(meta) {
            return Ok(());
        }
        let name = match normalize_member_name(&meta.raw_name) {
            Ok(name) => name,
            Err(reason) => {
                self.problems.push(Problem::error(format!(
                    "unsafe member `{}` in state.tgz: {reason}",
                    display_name(&meta.raw_name)
                )));
                return Ok(());
            }
        };
        match name.as_str() {
            INNER_NAME if meta.kind != EntryKind::File => {
                self.problems.push(Problem::error(format!(
                    "member `{name}` in state.tgz is {}",
                    meta.kind.describe()
                )));
            }
            INNER_NAME if self.inner_seen => {
                self.problems
                    .push(Problem::error("state.tgz holds more than one local.tgz"));
            }
            INNER_NAME => {
                self.inner_seen = true;
                self.read_inner(data)?;
            }
            MANIFEST_NAME => self.read_manifest(meta, data)?,
            "local.tgz.ve" | "encryption.info" => {
                return Err(WalkError::Format(
                    "state.tgz holds an encrypted local.tgz.ve (ESXi 7.0U2+ with a TPM); \
                     statectl cannot read encrypted state"
                        .into(),
                ))
            }
            other => self.problems.push(Problem::warning(format!(
                "unexpected member `{other}` in state.tgz (ignored)"
            ))),
        }
        Ok(())
    }

    fn read_manifest(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if meta.size > MAX_MANIFEST {
            self.problems.push(Problem::error(format!(
                "manifest {MANIFEST_NAME} is {} bytes, over the {MAX_MANIFEST}-byte limit",
                meta.size
            )));
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(meta.size as usize);
        data.read_to_end(&mut bytes)
            .map_err(|err| WalkError::Format(format!("state.tgz: {}", describe_io(&err))))?;
        match Manifest::from_json(&bytes) {
            Ok(manifest) => self.manifest = Some(manifest),
            Err(reason) => self.problems.push(Problem::error(format!(
                "manifest {MANIFEST_NAME} cannot be parsed: {reason}"
            ))),
        }
        Ok(())
    }

    fn read_inner(&mut self, data: &mut dyn Read) -> Result<(), WalkError> {
        let format =
            |err: std::io::Error| WalkError::Format(format!("{INNER_NAME}: {}", describe_io(&err)));
        let mut buffered = BufReader::with_capacity(64 << 10, data);
        let gz = GzMembers::new(&mut buffered);
        let limits = self.limits;
        let mut rest = walk(
            Budgeted::new(gz, self.budget.clone()),
            &limits,
            INNER_NAME,
            |meta, content| self.inner_entry(meta, content),
        )?;
        let (_, nonzero) = drain(&mut rest).map_err(format)?;
        if nonzero {
            self.problems.push(Problem::warning(format!(
                "{INNER_NAME}: non-zero data after the end of the tar archive"
            )));
        }
        drop(rest);
        let (trailing, _) = drain(&mut buffered).map_err(format)?;
        if trailing > 0 {
            self.problems.push(Problem::warning(format!(
                "{INNER_NAME}: {trailing} bytes of trailing data after the gzip stream"
            )));
        }
        Ok(())
    }

    fn inner_entry(&mut self, meta: &EntryMeta, content: &mut dyn Read) -> Result<(), WalkError> {
        if is_top_directory(meta) {
            return Ok(()); // not shown to the visitor: it names nothing below the root
        }
        let entry = InnerEntry {
            meta: meta.clone(),
            path: normalize_member_name(&meta.raw_name),
        };
        self.check_entry(&entry);
        let mut tracked = Tracked::new(content);
        let is_safe_file = entry.path.is_ok() && meta.kind == EntryKind::File;
        if !is_safe_file {
            return self.visit(&entry, &mut tracked);
        }
        let mut hashing = HashingReader::new(&mut tracked);
        let visited = self.visitor.entry(&entry, &mut hashing);
        let drained = visited.and_then(|()| Ok(drain(&mut hashing)?));
        if let Err(err) = drained {
            return Err(tracked.classify(err));
        }
        let sha256 = hashing.hex_digest();
        let path = entry.path.clone().unwrap_or_default();
        self.files.push(FileRecord {
            path,
            sha256,
            size: meta.size,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn visit(&mut self, entry: &InnerEntry, tracked: &mut Tracked<'_>) -> Result<(), WalkError> {
        match self.visitor.entry(entry, tracked) {
            Ok(()) => Ok(()),
            Err(err) => Err(tracked.classify(err)),
        }
    }

    fn check_entry(&mut self, entry: &InnerEntry) {
        let meta = &entry.meta;
        let path = match &entry.path {
            Ok(path) => path.clone(),
            Err(reason) => {
                self.problems.push(Problem::error(format!(
                    "unsafe member `{}` in {INNER_NAME}: {reason}",
                    entry.name()
                )));
                return;
            }
        };
        match meta.kind {
            EntryKind::File => {
                if meta.mode & 0o6000 != 0 {
                    self.problems.push(Problem::error(format!(
                        "`{path}` has the setuid or setgid bit (mode {:04o})",
                        meta.mode
                    )));
                }
            }
            EntryKind::Directory => self.directories.push(path.clone()),
            kind => self.problems.push(Problem::error(format!(
                "`{path}` is {}; only regular files and directories are allowed",
                kind.describe()
            ))),
        }
        if !self.seen.insert(path.clone()) {
            self.problems
                .push(Problem::error(format!("duplicate member `{path}`")));
        }
    }

    fn finish_checks(&mut self) {
        if !self.inner_seen {
            self.problems
                .push(Problem::error(format!("state.tgz holds no {INNER_NAME}")));
        }
        let file_paths: HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        for record in &self.files {
            let mut ancestor = record.path.as_str();
            while let Some((parent, _)) = ancestor.rsplit_once('/') {
                if file_paths.contains(parent) {
                    self.problems.push(Problem::error(format!(
                        "`{parent}` is both a file and the directory of `{}`",
                        record.path
                    )));
                }
                ancestor = parent;
            }
        }
        if let Some(manifest) = &self.manifest {
            self.problems
                .extend(compare_manifest(manifest, &self.files));
        }
    }
}
