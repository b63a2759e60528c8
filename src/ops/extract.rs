//! `extract`: unpack the inner files of an archive under a private directory.
//!
//! The archive is first copied into a private temp file; every entry (and every conflict
//! between entries) is validated by a full read of that copy before a second read of the same
//! copy (inflated ahead in a reader thread while this one writes) writes any file, so what is
//! written is exactly what was validated, even if the archive is rewritten during the run. Every write goes through the link-safe [`Placer`], so nothing
//! lands outside the directory. A new (or empty) directory is filled as a 0700 temp directory
//! beside it and renamed into place, so a killed extract leaves no half tree under DIR, only a
//! temp that the next run removes; with `--force` into a non-empty DIR the files are placed in
//! it one by one. Files are written without a per-file fsync and made durable together at the
//! end (one `syncfs` per filesystem, as `tar -x; sync -f` does) before the temp directory is
//! renamed and success is reported.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::archive::{
    open_private_copy, read_archive_from, reread_ahead, ArchiveSummary, CheckOnly, EntryKind,
    InnerEntry, Limits, Visitor,
};
use crate::fs::walk::DIR_FLAGS;
use crate::records::RecordTable;
use crate::restore::{FileMeta, Placer};
use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

/// What `extract` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractReport {
    pub archive: PathBuf,
    pub dir: PathBuf,
    pub files: usize,
    /// The archive's warning-level problems (a stale manifest set aside, say).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Extracts `archive` under `dir` (created 0700; must be empty unless `force`).
pub fn extract(archive: &Path, dir: &Path, force: bool, limits: &Limits) -> Result<ExtractReport> {
    crate::restore::keep_big_buffers_mapped();
    let file = open_private_copy(archive)?;
    let mut checked = read_archive_from(clone(&file, archive)?, archive, limits, &mut CheckOnly)?;
    checked.ensure_safe()?;
    checked.ensure_fits(dir)?;
    let warnings = checked.stale_manifest_warning().into_iter().collect();
    // The second read compares only the archive's sha256: the records of the first are not
    // kept while it holds its own (at 100,000 files they are about 20 MiB).
    checked.files = RecordTable::default();
    checked.directories = Vec::new();
    let written = match prepare_dir(dir, force)? {
        Some(dir_fd) => {
            let placer = Placer::at(dir, dir_fd).into_batched();
            let written = write_entries(file, &checked, archive, &placer, limits)?;
            placer.flush()?;
            written
        }
        None => extract_beside(file, &checked, archive, dir, limits)?,
    };
    Ok(ExtractReport {
        archive: archive.to_path_buf(),
        dir: dir.to_path_buf(),
        files: written.files.len(),
        warnings,
    })
}

/// Writes the entries of an archive already checked as `checked` (first read) through
/// `placer`, reading `file` again from its start; fails if the archive changed in between.
pub fn write_entries(
    mut file: File,
    checked: &ArchiveSummary,
    archive: &Path,
    placer: &Placer,
    limits: &Limits,
) -> Result<ArchiveSummary> {
    file.rewind()
        .with_context(|| format!("cannot rewind `{}`", archive.display()))?;
    let mut visitor = PlaceEntries { placer };
    let written = reread_ahead(file, archive, limits, &mut visitor)?;
    if written.sha256 != checked.sha256 {
        bail!(
            "archive `{}` changed while it was being extracted; extract it again",
            archive.display()
        );
    }
    Ok(written)
}

fn clone(file: &File, archive: &Path) -> Result<File> {
    file.try_clone()
        .with_context(|| format!("cannot reopen `{}`", archive.display()))
}

struct PlaceEntries<'a> {
    placer: &'a Placer,
}

impl Visitor for PlaceEntries<'_> {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let Ok(path) = &entry.path else {
            bail!("unsafe member `{}` (refused)", entry.name());
        };
        let meta = &entry.meta;
        match meta.kind {
            EntryKind::File => self.placer.place(
                path,
                data,
                &FileMeta {
                    mode: meta.mode,
                    uid: meta.uid,
                    gid: meta.gid,
                    mtime: meta.mtime,
                },
            ),
            EntryKind::Directory => self.placer.make_dir(path),
            kind => bail!("`{path}` is {} (refused)", kind.describe()),
        }
    }
}

/// Fills a 0700 temp directory beside `dir` and renames it over `dir` (absent or empty).
fn extract_beside(
    file: File,
    checked: &ArchiveSummary,
    archive: &Path,
    dir: &Path,
    limits: &Limits,
) -> Result<ArchiveSummary> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::fs::atomic::remove_stale_temps(parent)?;
    let temp = crate::fs::atomic::temp_dir_in(parent)?;
    // The temp directory is used through its descriptor, checked to be the private one just
    // made: one swapped in by the owner of `parent` is refused, not filled.
    let temp_fd = open_private_dir(temp.path())?;
    let ours = rfs::fstat(&temp_fd).map_err(std::io::Error::from)?;
    let placer = Placer::at(temp.path(), temp_fd).into_fresh();
    let written = write_entries(file, checked, archive, &placer, limits)?;
    // Every file durable before the directory holding them takes the name.
    placer.flush()?;
    std::fs::rename(temp.path(), dir)
        .with_context(|| format!("cannot move the extracted files to `{}`", dir.display()))?;
    // Renamed away: nothing is left for the guard to remove.
    let _ = temp.keep();
    crate::fs::atomic::sync_dir(parent)?;
    // What took the name must be the directory filled (a swap of the temp directory for
    // another one would otherwise leave `dir` someone else's, and report success).
    let moved = open_private_dir(dir)
        .and_then(|fd| rfs::fstat(&fd).map_err(|err| std::io::Error::from(err).into()));
    match moved {
        Ok(stat) if (stat.st_dev, stat.st_ino) == (ours.st_dev, ours.st_ino) => Ok(written),
        _ => bail!(
            "`{}` is not the directory extract filled (it was replaced while extract ran); \
             remove it and extract again",
            dir.display()
        ),
    }
}

/// Opens the directory `path` through no link on its own name and checks that it is private
/// to this run's user (owned by it, no group or other bits).
fn open_private_dir(path: &Path) -> Result<OwnedFd> {
    let fd = rfs::open(path, DIR_FLAGS, Mode::empty())
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot open `{}`", path.display()))?;
    let stat = rfs::fstat(&fd).map_err(std::io::Error::from)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if stat.st_uid != me || stat.st_mode & 0o077 != 0 {
        bail!(
            "`{}` is not a private directory of uid {me} (another user replaced it?); \
             nothing was extracted into it",
            path.display()
        );
    }
    Ok(fd)
}

/// Checks `dir` for an extract and creates its parents. `Some`: the files go into `dir`
/// itself (`force` and not empty), given as its descriptor, opened through no link, listed and
/// tightened to 0700 through it (never by path after a check); `None` when `dir` is absent or
/// an empty directory, to be replaced by a filled temp directory.
fn prepare_dir(dir: &Path, force: bool) -> Result<Option<OwnedFd>> {
    let fd = match rfs::open(dir, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create `{}`", parent.display()))?;
            }
            return Ok(None);
        }
        Err(Errno::NOTDIR) | Err(Errno::LOOP) => bail!(
            "`{}` exists and is not a directory (or is a symlink); choose another --to",
            dir.display()
        ),
        Err(err) => {
            return Err(std::io::Error::from(err))
                .with_context(|| format!("cannot open `{}`", dir.display()))
        }
    };
    let listed = rfs::Dir::read_from(&fd)
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot list `{}`", dir.display()))?;
    let mut names = listed.filter(|entry| {
        !matches!(
            entry.as_ref().map(|e| e.file_name().to_bytes()),
            Ok(b".") | Ok(b"..")
        )
    });
    if names.next().is_none() {
        return Ok(None);
    }
    if !force {
        bail!(
            "`{}` is not empty; choose an empty or new directory, or pass --force",
            dir.display()
        );
    }
    rfs::fchmod(&fd, Mode::from_raw_mode(0o700))
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot make `{}` private", dir.display()))?;
    Ok(Some(fd))
}
