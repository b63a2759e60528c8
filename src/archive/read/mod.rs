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
//!
//! # Memory
//! What a read keeps is bounded by the limits, never by what the archive holds. At the default
//! limits (100,000 entries, 64 KiB headers, 1 GiB) every command stays under 64 MiB
//! (tests/integration/bounded_memory.rs); `verify` of 100,000 ordinary files peaks at 17 MiB and a
//! `status` that must read such an archive at 31 MiB (README "Performance"):
//! - one entry's header at a time: a name or PAX record of at most 64 KiB (`max_header`);
//! - names over 4096 bytes or with a component over 255 are errors ([`super::names`]) and are
//!   never kept; a message shows at most 200 bytes of a name;
//! - the names kept (safe files and directories, for the consumers) are capped at
//!   [`MAX_KEPT_NAME_BYTES`] together (24 MiB: 100,000 names of 250 bytes; ESXi's average
//!   40), a cap the writer enforces too, so every archive statectl writes is read back;
//!   the records are a [`RecordTable`] (64 bytes a file besides its name): under 15 MiB at
//!   100,000 entries;
//! - duplicate, file-versus-directory and case checks keep a 64-bit hash per entry and per
//!   implied directory, at most 4 directories per allowed entry ([`index`]: about 7 MiB at the
//!   caps), never the names;
//! - the manifest is parsed streaming, each record checked against the files and dropped; no
//!   JSON string over 32 KiB ([`super::manifest`]); only a manifest read *before* `local.tgz`
//!   keeps its records until the end (its names count against the same 8 MiB);
//! - problems: at most [`MAX_PROBLEMS`] per level are kept, the rest are counted.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::entries::{EntryMeta, WalkError};
use super::envelope::Encryption;
use super::manifest::ManifestLabels;
use super::names::display_name;
use super::streams::{Budget, OVER_BUDGET};
use super::{Level, Limits, Problem};
use crate::error::Error;
use crate::records::RecordTable;

pub use super::entries::EntryKind;
pub use ahead::reread_ahead;
pub use bundled::BundleInfo;

mod ahead;
mod bundled;
mod index;
mod inner;
mod listed;
mod outer;

/// Largest manifest accepted (a 100,000-file manifest is about 25 MiB); it is streamed, so
/// this bounds time, not memory.
const MAX_MANIFEST: u64 = 48 << 20;
/// Bytes of names a read keeps for its consumers, all entries together (the writer refuses a
/// selection whose names pass it: `backup` and `pack` never write what a reader refuses).
pub const MAX_KEPT_NAME_BYTES: u64 = 24 << 20;
/// Problems kept per level; the rest are counted in one closing problem.
pub const MAX_PROBLEMS: usize = 100;

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
    pub files: RecordTable,
    /// Safe directory entries.
    pub directories: Vec<String>,
    /// The manifest's host and build (its records were checked against `files`).
    pub manifest: Option<ManifestLabels>,
    pub problems: Vec<Problem>,
    /// The first pair of names that differ only in letter case (a warning among `problems`;
    /// writers refuse it on a case-insensitive target, see [`Self::ensure_fits`]).
    pub case_collision: Option<String>,
    /// Size and sha256 of the archive file itself.
    pub bytes: u64,
    pub sha256: String,
    /// The key store and envelope header of the encrypted layout; `None` for plain `local.tgz`.
    pub encryption: Option<Encryption>,
    /// The bundle's `Manifest.txt` when the archive was a `configBundle-*.tgz`.
    pub bundle: Option<BundleInfo>,
    /// Its `statectl.json` did not match `local.tgz` and was set aside (one warning says so).
    pub stale_manifest: bool,
}

impl ArchiveSummary {
    pub fn first_error(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.level == Level::Error)
    }

    /// The warning that set a stale `statectl.json` aside, naming the archive.
    pub fn stale_manifest_warning(&self) -> Option<String> {
        let problem = self
            .problems
            .iter()
            .filter(|_| self.stale_manifest)
            .find(|p| p.message.starts_with(super::MANIFEST_NAME))?;
        Some(format!("{}: {}", self.archive.display(), problem.message))
    }

    /// Fails with the first error-level problem, naming the archive: the gate of every writer.
    pub fn ensure_safe(&self) -> Result<()> {
        self.ensure_clean("nothing was written")
    }

    /// Refuses an archive with names that differ only in case when `target` (or its nearest
    /// existing ancestor) is on a case-insensitive filesystem (FAT, exFAT, NTFS, FUSE), where
    /// the second would silently replace the first.
    pub fn ensure_fits(&self, target: &Path) -> Result<()> {
        let Some(collision) = &self.case_collision else {
            return Ok(());
        };
        let existing = target
            .ancestors()
            .find(|dir| dir.exists())
            .unwrap_or(target);
        if !is_case_insensitive(existing) {
            return Ok(());
        }
        Err(Error::UnsafeArchive {
            archive: self.archive.clone(),
            reason: format!(
                "{collision}, and `{}` is on a case-insensitive filesystem; nothing was written",
                target.display()
            ),
        }
        .into())
    }

    /// As [`Self::ensure_safe`], ending the message with `outcome` (what did not happen).
    pub fn ensure_clean(&self, outcome: &str) -> Result<()> {
        match self.first_error() {
            Some(problem) => Err(Error::UnsafeArchive {
                archive: self.archive.clone(),
                reason: format!("{}; {outcome}", problem.message),
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
/// It is opened without blocking and must be a regular file, so a FIFO or device planted at
/// its name cannot hang or flood the run.
pub fn open_archive(path: &Path) -> Result<File> {
    let (file, meta) = crate::fs::hostfile::open_nonblocking(path)
        .and_then(|opened| opened.context("it does not exist"))
        .with_context(|| format!("cannot open archive `{}`", path.display()))?;
    let reason = match meta.is_dir() {
        true => "it is a directory; name the state.tgz file inside it".to_string(),
        false if !meta.is_file() => format!(
            "it is {}, not a regular file",
            crate::fs::hostfile::kind_of(&meta)
        ),
        false => return Ok(file),
    };
    Err(Error::BadArchive {
        archive: path.to_path_buf(),
        reason,
    }
    .into())
}

/// Opens the archive at `path` and copies it into a private, unnamed temp file (0600, created
/// `O_TMPFILE` in the temp directory: no name anyone else could open), returned rewound. The
/// writers (extract, restore) validate and write from this one copy, so an archive rewritten
/// in place during their run cannot get a single entry written.
pub fn open_private_copy(path: &Path) -> Result<File> {
    use std::io::Seek;
    let mut source = open_archive(path)?;
    let fail = || {
        format!(
            "cannot copy archive `{}` into a private temp file (in {}); set TMPDIR to a \
             directory with free space",
            path.display(),
            std::env::temp_dir().display()
        )
    };
    let mut copy = tempfile::tempfile().with_context(fail)?;
    // At most the size it had when opened: the copy never outgrows its input.
    let size = source.metadata().with_context(fail)?.len();
    std::io::copy(&mut (&mut source).take(size), &mut copy).with_context(fail)?;
    copy.rewind().with_context(fail)?;
    Ok(copy)
}

/// Whether `dir` is on a filesystem that folds letter case (by its statfs magic); unknown:
/// no (the archive's names are then kept apart by the filesystem or refused by it).
fn is_case_insensitive(dir: &Path) -> bool {
    const FOLDING: [u64; 5] = [0x4d44, 0x2011_bab0, 0x5346_544e, 0x7366_746e, 0x6573_5546];
    rustix::fs::statfs(dir).is_ok_and(|fs| FOLDING.contains(&(fs.f_type as u64)))
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

/// The second read of an archive that [`read_archive_from`] read in full from the same private
/// copy, by a caller that compares the summary's `sha256` with the first read's (any changed
/// byte then fails it): the entries' content is not hashed again (the records' digests are
/// zero) and the manifest is not parsed again; every other check runs as in the first read.
pub fn reread_archive_from(
    file: File,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    read_with(file, path, limits, visitor, false)
}

/// Reads an archive from any byte stream (the fuzz target's entry point); `path` names it in
/// messages.
pub fn read_archive_stream<R: Read>(
    file: R,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    read_with(file, path, limits, visitor, true)
}

/// A complete read; `check_content`: hash each entry and check the manifest.
fn read_with<R: Read>(
    file: R,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
    check_content: bool,
) -> Result<ArchiveSummary> {
    let mut state = ReadState {
        check_content,
        limits: *limits,
        budget: Budget::new(limits.max_expanded),
        visitor,
        files: RecordTable::default(),
        directories: Vec::new(),
        index: index::NameIndex::new(limits.max_entries),
        kept_name_bytes: 0,
        problems: ProblemList::default(),
        manifest: None,
        manifest_seen: false,
        listed: listed::Listed::default(),
        case_collision: None,
        inner_seen: false,
        sealed: outer::SealedParts::default(),
        inner_done: false,
        bundle: bundled::BundleParts::default(),
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
    let stale_manifest = state.stale_manifest();
    let bundle = state
        .is_bundle()
        .then(|| state.bundle.info.take())
        .flatten();
    Ok(ArchiveSummary {
        archive: path.to_path_buf(),
        files: state.files,
        directories: state.directories,
        manifest: state.manifest,
        problems: state.problems.into_vec(),
        case_collision: state.case_collision,
        bytes,
        sha256,
        encryption: state.sealed.encryption,
        bundle,
        stale_manifest,
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
    /// Hash each entry and check the manifest (false only in [`reread_archive_from`]).
    check_content: bool,
    limits: Limits,
    budget: Budget,
    visitor: &'v mut dyn Visitor,
    files: RecordTable,
    directories: Vec<String>,
    index: index::NameIndex,
    /// Name bytes in `files`, `directories` and early manifest records.
    kept_name_bytes: u64,
    problems: ProblemList,
    manifest: Option<ManifestLabels>,
    manifest_seen: bool,
    listed: listed::Listed,
    case_collision: Option<String>,
    inner_seen: bool,
    /// The encrypted layout's members, gathered in any order.
    sealed: outer::SealedParts,
    /// `local.tgz` was read to its end (manifest records can be checked as they come).
    inner_done: bool,
    /// The bundle layer, when the archive is a `configBundle-*.tgz`.
    bundle: bundled::BundleParts,
}

impl ReadState<'_> {
    /// Counts `bytes` more of kept names; past [`MAX_KEPT_NAME_BYTES`] the read stops.
    fn keep_name(&mut self, bytes: usize) -> Result<(), String> {
        self.kept_name_bytes += bytes as u64;
        if self.kept_name_bytes > MAX_KEPT_NAME_BYTES {
            return Err(format!(
                "the names of its entries exceed {MAX_KEPT_NAME_BYTES} bytes together \
                 (a limit of the reader)"
            ));
        }
        Ok(())
    }
}

/// Problems found so far: the first [`MAX_PROBLEMS`] of each level, and how many more.
#[derive(Default)]
struct ProblemList {
    kept: Vec<Problem>,
    errors: usize,
    warnings: usize,
}

impl ProblemList {
    fn push(&mut self, problem: Problem) {
        let count = match problem.level {
            Level::Error => &mut self.errors,
            Level::Warning => &mut self.warnings,
        };
        *count += 1;
        if *count <= MAX_PROBLEMS {
            self.kept.push(problem);
        }
    }

    fn into_vec(mut self) -> Vec<Problem> {
        for (count, level) in [(self.warnings, "warnings"), (self.errors, "errors")] {
            if count > MAX_PROBLEMS {
                let message = format!("{} more {level} not shown", count - MAX_PROBLEMS);
                self.kept.push(match level {
                    "errors" => Problem::error(message),
                    _ => Problem::warning(message),
                });
            }
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_read_skips_digests_and_manifest_but_still_hashes_the_archive() {
        use crate::archive::{write_archive, ArchiveLabel, SourceFile};
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("hosts");
        std::fs::write(&source, b"127.0.0.1 localhost\n").unwrap();
        let files = [SourceFile {
            path: "etc/hosts".into(),
            abs: source,
        }];
        let mut bytes = Vec::new();
        write_archive(&mut bytes, &files, &ArchiveLabel::default(), dir.path()).unwrap();
        let path = dir.path().join("state.tgz");
        std::fs::write(&path, &bytes).unwrap();
        let limits = Limits::default();
        let open = || File::open(&path).unwrap();
        let first = read_archive_from(open(), &path, &limits, &mut CheckOnly).unwrap();
        let again = reread_archive_from(open(), &path, &limits, &mut CheckOnly).unwrap();
        assert_eq!(again.sha256, first.sha256);
        assert_eq!(again.files.get(0).path, "etc/hosts");
        assert_ne!(first.files.get(0).sha256, [0; 32]);
        assert_eq!(
            again.files.get(0).sha256,
            [0; 32],
            "content is not hashed again"
        );
        assert!(first.manifest.is_some() && again.manifest.is_none());
        assert!(again.problems.is_empty(), "{:?}", again.problems);
        let mut changed = bytes.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        std::fs::write(&path, &changed).unwrap();
        let reread = reread_archive_from(open(), &path, &limits, &mut CheckOnly);
        assert!(reread.map_or(true, |s| s.sha256 != first.sha256));
    }

    #[test]
    fn the_private_copy_keeps_what_was_there_when_the_archive_is_rewritten_in_place() {
        use std::io::{Seek, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.tgz");
        std::fs::write(&path, b"validated bytes").unwrap();
        let mut copy = open_private_copy(&path).unwrap();
        let mut same_inode = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        same_inode.write_all(b"rewritten bytes").unwrap();
        for _ in 0..2 {
            let mut read = Vec::new();
            copy.read_to_end(&mut read).unwrap();
            assert_eq!(read, b"validated bytes");
            copy.rewind().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"rewritten bytes");
    }
}
