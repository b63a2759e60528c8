//! Link-safe placement of files under a root directory.
//!
//! # Security
//! Every path is walked one component at a time from an open descriptor of the root with
//! `O_NOFOLLOW | O_DIRECTORY` ([`crate::fs::walk`]): a directory symlink among the parents is
//! resolved by that walk *within* the root (a link whose target is missing there is refused),
//! so nothing can land outside the root, even when the root is `/` and even if a link is
//! planted while we work. The file itself goes to a 0600 temp file in its directory (created
//! `O_EXCL | O_NOFOLLOW`), gets owner, all 12 mode bits and mtime through its descriptor, is
//! fsynced and renamed over the name, and the directory is fsynced. Renaming over a symlink
//! replaces the link, never its target. Writing and renaming can be split ([`Placer::stage`],
//! then [`Placer::commit`] or [`Placer::discard`]) so a restore renames nothing until every
//! file is safely written. The first write into a directory removes the temp files a killed
//! run left there (see [`crate::fs::atomic`]), so a re-run of a killed restore or extract cleans up.
//! A placer opened with [`Placer::open_batched`] skips the per-file fsyncs and makes everything
//! durable at once in [`Placer::flush`], and files staged one after another in the same
//! directory reuse its descriptor ([`super::dircache`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use rustix::fs::{self as rfs, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::dircache::DirCache;
use super::temps::{self, create_temp, TempId};
use crate::fs::walk::{Walk, DIR_FLAGS};

/// Metadata a placed file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// What is at a destination now (seen without following links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: the file (and maybe parent directories) would be created.
    Absent,
    /// A regular file with this metadata.
    File { meta: FileMeta, size: u64 },
    /// Something else (a directory, a symlink, a device): placing would replace it or fail.
    Other(&'static str),
}

/// Places files under one root.
pub struct Placer {
    root: PathBuf,
    root_fd: OwnedFd,
    /// Set owners (root can; others keep their own uid).
    pub set_owner: bool,
    /// Directories created so far, root-relative, in creation order.
    created: RefCell<Vec<String>>,
    /// Directories already cleaned of stale temp files, root-relative.
    cleaned: RefCell<HashSet<String>>,
    /// The last directory staged in, and the filesystems to flush when batched.
    dirs: DirCache,
    /// The root is a directory this run created and no one else writes ([`Placer::into_fresh`]).
    fresh: bool,
    /// The last directory (root-relative) a look-up found missing, so the other files of a
    /// missing directory (a restore into an empty root) are not walked to again; forgotten
    /// as soon as this placer creates a directory.
    missing: RefCell<Option<String>>,
}

impl Placer {
    /// Opens `root`, which must be an existing directory; each file is durable once placed.
    pub fn open(root: &Path) -> Result<Placer> {
        let root_fd = rfs::open(root, DIR_FLAGS, Mode::empty())
            .map_err(io::Error::from)
            .with_context(|| format!("cannot open target directory `{}`", root.display()))?;
        Ok(Placer::at(root, root_fd))
    }

    /// A placer under the directory already open as `root_fd` (shown as `root`), e.g. one
    /// checked through its descriptor; each file is durable once placed.
    pub fn at(root: &Path, root_fd: OwnedFd) -> Placer {
        Placer {
            root: root.to_path_buf(),
            root_fd,
            set_owner: crate::process::effective_uid() == 0,
            created: RefCell::new(Vec::new()),
            cleaned: RefCell::new(HashSet::new()),
            dirs: DirCache::per_file(),
            fresh: false,
            missing: RefCell::new(None),
        }
    }

    /// Opens `root` with batched durability: nothing is fsynced while files are written;
    /// [`Placer::flush`] makes all of it durable with one `syncfs` per filesystem.
    pub fn open_batched(root: &Path) -> Result<Placer> {
        Ok(Placer::open(root)?.into_batched())
    }

    /// This placer with batched durability (see [`Placer::open_batched`]).
    pub fn into_batched(mut self) -> Placer {
        self.dirs = DirCache::batched();
        self
    }

    /// This placer over `root`, a directory this run just created, private, that no one else
    /// writes (extract's temp directory beside its target), batched; [`Placer::place`] then
    /// creates each file at its name directly: there is nothing to replace, and no one sees a
    /// file half-written, since the directory takes its public name only after [`Placer::flush`].
    pub fn into_fresh(self) -> Placer {
        let mut placer = self.into_batched();
        placer.fresh = true;
        placer
    }

    /// Makes everything placed, staged or removed so far durable (no-op without batching,
    /// where each file already is).
    pub fn flush(&self) -> Result<()> {
        self.dirs
            .flush()
            .with_context(|| format!("cannot flush `{}` to disk", self.root.display()))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What is at `rel` now; refuses a symlink or non-directory among its parents.
    pub fn existing(&self, rel: &str) -> Result<Existing> {
        let (parents, name) = split(rel)?;
        let Some(dir) = self.existing_dir(&parents)? else {
            return Ok(Existing::Absent);
        };
        match rfs::statat(&dir, name, rfs::AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(Existing::Absent),
            Err(err) => Err(io::Error::from(err))
                .with_context(|| format!("cannot stat `{}`", self.root.join(rel).display())),
            Ok(stat) => {
                let kind = rfs::FileType::from_raw_mode(stat.st_mode);
                Ok(match kind {
                    rfs::FileType::RegularFile => Existing::File {
                        meta: FileMeta {
                            mode: stat.st_mode & 0o7777,
                            uid: stat.st_uid,
                            gid: stat.st_gid,
                            mtime: stat.st_mtime,
                        },
                        size: stat.st_size as u64,
                    },
                    rfs::FileType::Directory => Existing::Other("a directory"),
                    rfs::FileType::Symlink => Existing::Other("a symlink"),
                    _ => Existing::Other("a special file"),
                })
            }
        }
    }

    /// True when `rel` is a directory, reached through in-root directory links if need be.
    pub fn is_directory(&self, rel: &str) -> Result<bool> {
        let (parents, name) = split(rel)?;
        let mut parts = parents;
        parts.push(name);
        Ok(self.walk(&parts, false)?.is_some())
    }

    /// Opens the existing regular file at `rel` for reading, through no link and without
    /// blocking (a FIFO swapped in since it was looked at is refused, not waited on).
    pub fn open_existing(&self, rel: &str) -> Result<File> {
        let (parents, name) = split(rel)?;
        let shown = self.root.join(rel);
        let dir = self
            .walk(&parents, false)?
            .with_context(|| format!("`{}` does not exist", shown.display()))?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = rfs::openat(&dir, name, flags | OFlags::CLOEXEC, Mode::empty())
            .map_err(io::Error::from)
            .with_context(|| format!("cannot open `{}`", shown.display()))?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat `{}`", shown.display()))?;
        if !meta.is_file() {
            return Err(crate::fs::hostfile::not_regular(&shown, &meta));
        }
        Ok(file)
    }

    /// Writes `data` to `rel` atomically with `meta`, creating missing parents 0755.
    pub fn place(&self, rel: &str, data: &mut dyn Read, meta: &FileMeta) -> Result<()> {
        if self.fresh {
            return self.create_in_fresh(rel, data, meta);
        }
        let temp = self.stage(rel, data, meta)?;
        self.commit(rel, temp)
            .inspect_err(|_| self.discard(rel, temp))
    }

    /// Creates `rel` (it must not exist) with `data` and `meta`, in a fresh root.
    fn create_in_fresh(&self, rel: &str, data: &mut dyn Read, meta: &FileMeta) -> Result<()> {
        let (parents, name) = split(rel)?;
        let target = self.root.join(rel);
        let dir = self
            .parent_dir(&parents, true)?
            .with_context(|| format!("cannot create the directory of `{}`", target.display()))?;
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW;
        let fd = rfs::openat(
            &*dir,
            name,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io::Error::from)
        .with_context(|| format!("cannot create `{}`", target.display()))?;
        fill(fd, data, meta, self.set_owner, false)
            .with_context(|| format!("cannot write `{}`", target.display()))
    }

    /// Writes `data` with `meta` to a temp file beside `rel` (fsynced unless batched; creating
    /// missing parents 0755) without touching `rel` itself: [`Placer::commit`] renames it into
    /// place, [`Placer::discard`] removes it.
    pub fn stage(&self, rel: &str, data: &mut dyn Read, meta: &FileMeta) -> Result<TempId> {
        let (parents, _) = split(rel)?;
        let target = self.root.join(rel);
        let dir = self
            .parent_dir(&parents, true)?
            .with_context(|| format!("cannot create the directory of `{}`", target.display()))?;
        self.clean_once(&parents, &dir)?;
        let (temp_id, temp) = create_temp(&dir)
            .with_context(|| format!("cannot create a temp file beside `{}`", target.display()))?;
        let sync_now = !self.dirs.is_batched();
        if let Err(err) = fill(temp, data, meta, self.set_owner, sync_now) {
            let _ = rfs::unlinkat(&*dir, temp_id.name().as_str(), rfs::AtFlags::empty());
            return Err(err).with_context(|| format!("cannot write `{}`", target.display()));
        }
        Ok(temp_id)
    }

    /// Renames the temp file `temp` staged for `rel` over it and fsyncs the directory (with
    /// batching: leaves that to [`Placer::flush`]).
    pub fn commit(&self, rel: &str, temp: TempId) -> Result<()> {
        let (parents, name) = split(rel)?;
        let target = self.root.join(rel);
        let dir = self
            .parent_dir(&parents, false)?
            .with_context(|| format!("the directory of `{}` disappeared", target.display()))?;
        rfs::renameat(&*dir, temp.name().as_str(), &*dir, name)
            .and_then(|()| self.dirs.sync_dir(&dir))
            .map_err(io::Error::from)
            .with_context(|| format!("cannot write `{}`", target.display()))
    }

    /// Removes the temp file `temp` staged for `rel` (best effort: it is only a temp file).
    pub fn discard(&self, rel: &str, temp: TempId) {
        let (parents, _) = split(rel).unwrap_or_default();
        if let Ok(Some(dir)) = self.walk(&parents, false) {
            let _ = rfs::unlinkat(&dir, temp.name().as_str(), rfs::AtFlags::empty());
        }
    }

    /// Removes the stale temp files in the directories of `paths` (root-relative files) that
    /// exist, through no link; a missing directory is skipped.
    pub fn clean_temps_beside<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> Result<()> {
        for path in paths {
            let (parents, _) = split(path)?;
            if self.cleaned.borrow().contains(&parents.join("/")) {
                continue;
            }
            if let Some(dir) = self.existing_dir(&parents)? {
                self.clean_once(&parents, &dir)?;
            }
        }
        Ok(())
    }

    /// Removes the stale temp files of the directory `dir` (at `parents`), once per run.
    fn clean_once(&self, parents: &[&str], dir: &OwnedFd) -> Result<()> {
        let key = parents.join("/");
        if self.cleaned.borrow().contains(&key) {
            return Ok(());
        }
        temps::remove_stale(dir, &self.root.join(&key))?;
        self.cleaned.borrow_mut().insert(key);
        Ok(())
    }

    /// Removes the regular file at `rel` (through no link) and fsyncs its directory (with
    /// batching: leaves that to [`Placer::flush`]); a file already gone is fine.
    pub fn remove_file(&self, rel: &str) -> Result<()> {
        let (parents, name) = split(rel)?;
        let Some(dir) = self.parent_dir(&parents, false)? else {
            return Ok(());
        };
        match rfs::unlinkat(&*dir, name, rfs::AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => self.dirs.sync_dir(&dir),
            Err(err) => Err(err),
        }
        .map_err(io::Error::from)
        .with_context(|| format!("cannot remove `{}`", self.root.join(rel).display()))
    }

    /// Creates the directory `rel` (and its parents) 0755 when missing.
    pub fn make_dir(&self, rel: &str) -> Result<()> {
        let parts: Vec<&str> = rel.split('/').collect();
        let path = self.root.join(rel);
        let dir = self
            .walk(&parts, true)?
            .with_context(|| format!("cannot create directory `{}`", path.display()))?;
        self.dirs
            .note(&dir)
            .with_context(|| format!("cannot stat `{}`", path.display()))
    }

    /// The directory `parents` below the root, as [`Placer::walk`] finds it, reusing the last
    /// one when it is the same path (a descriptor opened by an earlier walk of this run, so
    /// reached through no link planted since). A directory met first is noted for
    /// [`Placer::flush`].
    fn parent_dir(&self, parents: &[&str], create: bool) -> Result<Option<Rc<OwnedFd>>> {
        let key = parents.join("/");
        if let Some(dir) = self.dirs.last(&key) {
            return Ok(Some(dir));
        }
        let Some(dir) = self.walk(parents, create)? else {
            return Ok(None);
        };
        self.dirs
            .note(&dir)
            .with_context(|| format!("cannot stat `{}`", self.root.join(&key).display()))?;
        Ok(Some(self.dirs.remember(key, dir)))
    }

    /// Removes the directories this placer created, deepest first, where they are still
    /// empty (best effort), so a failed run leaves the tree as it found it.
    pub fn remove_created_dirs(&self) {
        self.dirs.forget();
        let created = std::mem::take(&mut *self.created.borrow_mut());
        for rel in created.iter().rev() {
            let parts: Vec<&str> = rel.split('/').collect();
            let Some((name, parents)) = parts.split_last() else {
                continue;
            };
            if let Ok(Some(dir)) = self.walk(parents, false) {
                let _ = rfs::unlinkat(&dir, *name, rfs::AtFlags::REMOVEDIR);
            }
        }
    }

    /// The directory `parents` when it exists ([`Placer::walk`] without creating), remembering
    /// the last one missing.
    fn existing_dir(&self, parents: &[&str]) -> Result<Option<OwnedFd>> {
        let key = parents.join("/");
        if self.missing.borrow().as_deref() == Some(key.as_str()) {
            return Ok(None);
        }
        let dir = self.walk(parents, false)?;
        if dir.is_none() {
            *self.missing.borrow_mut() = Some(key);
        }
        Ok(dir)
    }

    /// Walks `parts` below the root, optionally creating missing directories; `None` when a
    /// part is missing and `create` is false. Directory links resolve within the root.
    fn walk(&self, parts: &[&str], create: bool) -> Result<Option<OwnedFd>> {
        let walk = Walk {
            root_fd: &self.root_fd,
            root: &self.root,
        };
        walk.walk(parts, create, &mut |rel| {
            self.missing.borrow_mut().take();
            self.created.borrow_mut().push(rel)
        })
    }
}

fn split(rel: &str) -> Result<(Vec<&str>, &str)> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        bail!("unsafe path `{rel}`");
    }
    let Some((name, parents)) = parts.split_last() else {
        bail!("unsafe path `{rel}`");
    };
    Ok((parents.to_vec(), name))
}

fn fill(
    fd: OwnedFd,
    data: &mut dyn Read,
    meta: &FileMeta,
    set_owner: bool,
    sync_now: bool,
) -> io::Result<()> {
    let mut file = File::from(fd);
    io::copy(data, &mut file)?;
    file.flush()?;
    if set_owner {
        rfs::fchown(
            file.as_fd(),
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
        )?;
    }
    // After chown, which may clear mode bits.
    rfs::fchmod(file.as_fd(), Mode::from_raw_mode(meta.mode & 0o7777))?;
    let time = Timespec {
        tv_sec: meta.mtime,
        tv_nsec: 0,
    };
    rfs::futimens(
        file.as_fd(),
        &Timestamps {
            last_access: time,
            last_modification: time,
        },
    )?;
    if sync_now {
        file.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const META: FileMeta = FileMeta {
        mode: 0o1640,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
    };

    #[test]
    fn places_with_mode_and_mtime_creating_parents() {
        let root = tempfile::tempdir().unwrap();
        let placer = Placer::open(root.path()).unwrap();
        assert_eq!(placer.existing("etc/vmware/x").unwrap(), Existing::Absent);
        placer
            .place("etc/vmware/x", &mut &b"hello"[..], &META)
            .unwrap();
        let meta = std::fs::metadata(root.path().join("etc/vmware/x")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o1640);
        assert_eq!(meta.mtime(), 1_600_000_000);
        let dir = std::fs::metadata(root.path().join("etc/vmware")).unwrap();
        assert_eq!(dir.mode() & 0o777, 0o755);
        assert!(matches!(
            placer.existing("etc/vmware/x").unwrap(),
            Existing::File { size: 5, .. }
        ));
    }

    #[test]
    fn a_directory_found_missing_is_seen_once_this_placer_creates_it() {
        let root = tempfile::tempdir().unwrap();
        let placer = Placer::open_batched(root.path()).unwrap();
        for rel in ["etc/d/a", "etc/d/b"] {
            assert_eq!(placer.existing(rel).unwrap(), Existing::Absent);
        }
        placer.place("etc/d/a", &mut &b"A"[..], &META).unwrap();
        assert!(matches!(
            placer.existing("etc/d/a").unwrap(),
            Existing::File { size: 1, .. }
        ));
        assert_eq!(placer.existing("etc/d/b").unwrap(), Existing::Absent);
    }

    #[test]
    fn refuses_a_symlinked_parent_and_writes_nothing_outside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("etc")).unwrap();
        let placer = Placer::open(root.path()).unwrap();
        let err = placer
            .place("etc/passwd", &mut &b"x"[..], &META)
            .unwrap_err();
        assert!(format!("{err:#}").contains("symlink"), "{err:#}");
        assert!(placer.existing("etc/passwd").is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn replaces_a_symlink_itself_not_its_target() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("x")).unwrap();
        let placer = Placer::open(root.path()).unwrap();
        placer.place("x", &mut &b"new"[..], &META).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(root.path().join("x")).unwrap(),
            "new"
        );
    }
}
