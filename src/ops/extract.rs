//! `extract`: unpack the inner files of an archive under a private directory.
//!
//! Every entry is validated by a first full read before the second read writes any file, and
//! every write goes through the link-safe [`Placer`], so nothing lands outside the directory.
//! Files are written without a per-file fsync and made durable together at the end (one
//! `syncfs` per filesystem, as `tar -x; sync -f` does) before success is reported.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::archive::{
    open_archive, read_archive_from, ArchiveSummary, CheckOnly, EntryKind, InnerEntry, Limits,
    Visitor,
};
use crate::restore::{FileMeta, Placer};

/// What `extract` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractReport {
    pub archive: PathBuf,
    pub dir: PathBuf,
    pub files: usize,
}

/// Extracts `archive` under `dir` (created 0700; must be empty unless `force`).
pub fn extract(archive: &Path, dir: &Path, force: bool, limits: &Limits) -> Result<ExtractReport> {
    let file = open_archive(archive)?;
    let checked = read_archive_from(clone(&file, archive)?, archive, limits, &mut CheckOnly)?;
    checked.ensure_safe()?;
    prepare_dir(dir, force)?;
    let placer = Placer::open_batched(dir)?;
    let written = write_entries(file, &checked, archive, &placer, limits)?;
    placer.flush()?;
    Ok(ExtractReport {
        archive: archive.to_path_buf(),
        dir: dir.to_path_buf(),
        files: written.files.len(),
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
    let written = read_archive_from(file, archive, limits, &mut visitor)?;
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

/// Creates `dir` 0700, or checks an existing one is a real, empty directory (unless `force`)
/// and tightens it to 0700.
fn prepare_dir(dir: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list `{}`", dir.display()))?;
            if !force && entries.next().is_some() {
                bail!(
                    "`{}` is not empty; choose an empty or new directory, or pass --force",
                    dir.display()
                );
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make `{}` private", dir.display()))
        }
        Ok(_) => bail!(
            "`{}` exists and is not a directory (or is a symlink); choose another --to",
            dir.display()
        ),
        Err(_) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create `{}`", parent.display()))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))
        }
    }
}
