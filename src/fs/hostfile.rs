//! Opening the host's files so that no planted file can hang, grow or redirect a run.
//!
//! Two kinds of host file are read. A *non-member* file (`boot.cfg`, the config, a lock file,
//! `configblacklist`, a bank's `state.tgz`) is opened with [`open_regular`]: non-blocking (a
//! FIFO planted there cannot hang the open), and it must be a regular file (a FIFO, device,
//! socket or directory is refused naming it), so a read of it ends; [`read_bounded`] also caps
//! how much is read. A *host file under the root* that a command reads for its content (a
//! selected file, `required`, the undo archive's copies, `diff`, `passwd`'s live shadow, the
//! identity files) is opened with a [`RootReader`]: through the descriptor walk of
//! [`crate::fs::walk`], component by component from the root's descriptor, so the root's own links
//! are resolved within the root (`openat2` `RESOLVE_IN_ROOT` semantics) and nothing outside the
//! root is ever opened, and never through a link on the file itself. [`RootReader::open_selected`]
//! then checks that the file opened is the one a selection saw (device and inode), so a
//! directory swapped for a link meanwhile cannot bring another file's bytes in.

use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::fs::walk::{Walk, DIR_FLAGS};

/// What a non-regular file is, for the message refusing it.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The error refusing `path`, which is not a regular file (`meta`).
pub fn not_regular(path: &Path, meta: &Metadata) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}` is {}, not a regular file; statectl reads only regular files there: remove it",
        path.display(),
        kind_of(meta)
    )
}

/// Opens the non-member file `path` for reading without blocking; it must be a regular file.
/// A missing file is `Ok(None)`.
pub fn open_regular(path: &Path) -> Result<Option<(File, Metadata)>> {
    let opened = open_nonblocking(path)?;
    if let Some((_, meta)) = &opened {
        if !meta.is_file() {
            return Err(not_regular(path, meta));
        }
    }
    Ok(opened)
}

/// Opens `path` for reading without blocking, whatever it is (the caller checks its kind).
pub fn open_nonblocking(path: &Path) -> Result<Option<(File, Metadata)>> {
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot open `{}`", path.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat `{}`", path.display()))?;
    Ok(Some((file, meta)))
}

/// Reads at most `max` bytes from `file` (at `path`); more is an error naming the file.
pub fn read_capped(file: impl Read, path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "`{}` is over {max} bytes, the most statectl reads there",
            path.display()
        );
    }
    Ok(bytes)
}

/// The content of the non-member file `path` (a regular file of at most `max` bytes), or
/// `None` when it does not exist.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    match open_regular(path)? {
        Some((file, _)) => read_capped(file, path, max).map(Some),
        None => Ok(None),
    }
}

/// The device and inode a selection saw a file with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
}

/// Opens files below one root through the in-root descriptor walk; the last directory walked
/// is kept, so files of one directory cost one `openat` each.
pub struct RootReader {
    root: PathBuf,
    root_fd: OwnedFd,
    last_dir: RefCell<Option<(PathBuf, OwnedFd)>>,
}

impl RootReader {
    /// Opens the directory `root`.
    pub fn open(root: &Path) -> Result<RootReader> {
        let root_fd = rfs::open(root, DIR_FLAGS, Mode::empty())
            .map_err(io::Error::from)
            .with_context(|| format!("cannot open root directory `{}`", root.display()))?;
        Ok(RootReader {
            root: root.to_path_buf(),
            root_fd,
            last_dir: RefCell::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens root-relative `rel` (its parents' links resolved within the root, none followed
    /// on the file itself) without blocking; it must be a regular file. `Ok(None)`: missing.
    pub fn open_file(&self, rel: &Path) -> Result<Option<(File, Metadata)>> {
        let shown = self.root.join(rel);
        let (parent, name) =
            split(rel).with_context(|| format!("`{}` is not a file path", shown.display()))?;
        let Some(dir) = self.dir(&parent)? else {
            return Ok(None);
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rfs::openat(
            &dir.1,
            name.as_os_str(),
            flags | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => bail!(
                "`{}` is a symlink; statectl does not read a file through a link on its own name",
                shown.display()
            ),
            Err(err) => {
                return Err(io::Error::from(err))
                    .with_context(|| format!("cannot open `{}`", shown.display()))
            }
        };
        *self.last_dir.borrow_mut() = Some(dir);
        let file = File::from(fd);
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat `{}`", shown.display()))?;
        if !meta.is_file() {
            return Err(not_regular(&shown, &meta));
        }
        Ok(Some((file, meta)))
    }

    /// Opens `rel` as [`RootReader::open_file`] does and checks that it is the file the
    /// selection saw (`expected`); a missing or different file is the typed
    /// [`crate::error::Error::FileChanged`] (exit 1: run again).
    pub fn open_selected(&self, rel: &Path, expected: Identity) -> Result<(File, Metadata)> {
        let changed = || crate::error::Error::FileChanged {
            path: self.root.join(rel),
        };
        let (file, meta) = self.open_file(rel)?.ok_or_else(changed)?;
        if (meta.dev(), meta.ino()) != (expected.dev, expected.ino) {
            return Err(changed().into());
        }
        Ok((file, meta))
    }

    /// The directory `parent` (root-relative), walked within the root; `None` when missing.
    fn dir(&self, parent: &Path) -> Result<Option<(PathBuf, OwnedFd)>> {
        let cached = matches!(&*self.last_dir.borrow(), Some((last, _)) if last == parent);
        if cached {
            return Ok(self.last_dir.borrow_mut().take());
        }
        let parts: Vec<&str> = parent
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => name.to_str(),
                Component::ParentDir => Some(".."),
                _ => None,
            })
            .collect();
        let walk = Walk {
            root_fd: &self.root_fd,
            root: &self.root,
        };
        let found = walk.find(&parts)?;
        Ok(found.map(|fd| (parent.to_path_buf(), fd)))
    }
}

/// The parent and last component of a relative file path.
fn split(rel: &Path) -> Option<(PathBuf, PathBuf)> {
    let name = match rel.components().next_back()? {
        Component::Normal(name) => PathBuf::from(name),
        _ => return None,
    };
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    Some((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_fifo_is_refused_without_blocking_and_a_big_file_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("boot.cfg");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o644)).unwrap();
        let err = read_bounded(&fifo, 10).unwrap_err();
        assert!(format!("{err:#}").contains("is a FIFO"), "{err:#}");
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).unwrap();
        assert!(read_bounded(&big, 10).is_err());
        assert_eq!(read_bounded(&big, 11).unwrap().unwrap().len(), 11);
        assert!(read_bounded(&dir.path().join("none"), 1).unwrap().is_none());
        symlink("/dev/zero", dir.path().join("zero")).unwrap();
        let err = read_bounded(&dir.path().join("zero"), 1 << 20).unwrap_err();
        assert!(format!("{err:#}").contains("a device"), "{err:#}");
    }

    #[test]
    fn root_reads_resolve_links_inside_the_root_and_check_the_identity() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(outer.path().join("etc")).unwrap();
        std::fs::write(outer.path().join("etc/secret"), "outside").unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/secret"), "inside").unwrap();
        symlink(outer.path().join("etc"), root.join("etc/abs")).unwrap();
        symlink("../../../../etc", root.join("etc/up")).unwrap();
        symlink("/data", root.join("etc/data")).unwrap();
        symlink("/data/secret", root.join("etc/file-link")).unwrap();
        let reader = RootReader::open(&root).unwrap();
        for rel in ["etc/abs/secret", "etc/up/secret"] {
            // Missing inside the root: refused, never the outside file.
            let opened = reader.open_file(Path::new(rel));
            assert!(!matches!(opened, Ok(Some(_))), "{rel}");
        }
        let (mut file, meta) = reader
            .open_file(Path::new("etc/data/secret"))
            .unwrap()
            .unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "inside");
        assert!(reader.open_file(Path::new("etc/file-link")).is_err());
        let seen = Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        };
        assert!(reader.open_selected(Path::new("data/secret"), seen).is_ok());
        std::fs::write(root.join("data/other"), "x").unwrap();
        std::fs::rename(root.join("data/other"), root.join("data/secret")).unwrap();
        let err = reader
            .open_selected(Path::new("data/secret"), seen)
            .unwrap_err();
        assert!(format!("{err:#}").contains("changed"), "{err:#}");
    }
}
