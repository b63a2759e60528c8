//! The descriptor walk every write under a root goes through: one component at a time from the
//! root's open descriptor, each opened `O_NOFOLLOW | O_DIRECTORY`, so the kernel never follows
//! a link on its own.
//!
//! # Security
//! A pre-existing directory symlink among the parents (ESXi's `etc/sfcb/repository ->
//! /var/lib/sfcb/registration/repository`) is read with `readlinkat` and resolved by this walk
//! *within* the root, with `openat2` `RESOLVE_IN_ROOT` semantics: an absolute target starts
//! again at the root's descriptor, `..` goes up the walk's own stack of descriptors and stops
//! at the root. So nothing is ever reached outside the root, even when it is `/` and even if a
//! link is planted while we work (a planted link is resolved the same way). A link whose target
//! does not exist inside the root is refused, in planning and in writing alike, so nothing is
//! ever created through it; more than 40 links in one walk is a loop and refused.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

/// Links followed in one walk before it counts as a loop (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

pub const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// One component still to walk; `link` is the link (shown path, target) it comes from.
struct Step {
    name: Vec<u8>,
    link: Option<usize>,
}

/// A walk below `root` (open as `root_fd`).
pub struct Walk<'a> {
    pub root_fd: &'a OwnedFd,
    pub root: &'a Path,
}

impl Walk<'_> {
    /// Walks `parts` below the root, resolving directory links within it; creates missing
    /// directories 0755 with `create` (each reported to `created`, root-relative and physical),
    /// else gives `None` for a missing part.
    pub fn walk(
        &self,
        parts: &[&str],
        create: bool,
        created: &mut dyn FnMut(String),
    ) -> Result<Option<OwnedFd>> {
        self.resolve(parts, create, false, created)
    }

    /// Walks `parts` below the root for reading: as [`Walk::walk`] without creating, except
    /// that a link whose target is missing in the root is a missing part (`None`) too, not an
    /// error (nothing is written through it).
    pub fn find(&self, parts: &[&str]) -> Result<Option<OwnedFd>> {
        self.resolve(parts, false, true, &mut |_| {})
    }

    fn resolve(
        &self,
        parts: &[&str],
        create: bool,
        reading: bool,
        created: &mut dyn FnMut(String),
    ) -> Result<Option<OwnedFd>> {
        let mut pending: Vec<Step> = parts
            .iter()
            .rev()
            .map(|p| Step {
                name: p.as_bytes().to_vec(),
                link: None,
            })
            .collect();
        let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
        while let Some(step) = pending.pop() {
            match step.name.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let physical = self.physical(&stack, &step.name);
            let shown = self.root.join(&physical);
            let dir = match stack.last() {
                Some((fd, _)) => fd,
                None => self.root_fd,
            };
            let name = OsStr::from_bytes(&step.name);
            let next = match rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if reading => return Ok(None),
                Err(Errno::NOENT) if step.link.is_some() => {
                    let (link, target) = &links[step.link.unwrap_or_default()];
                    bail!(
                        "`{}` is a symlink to `{}`, which does not exist inside the root; \
                         refusing to go through it",
                        link.display(),
                        target.display()
                    )
                }
                Err(Errno::NOENT) if !create => return Ok(None),
                Err(Errno::NOENT) => self.make(dir, name, &shown, physical, created)?,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let target = match rfs::readlinkat(dir, name, Vec::new()) {
                        Ok(target) => PathBuf::from(OsStr::from_bytes(target.as_bytes())),
                        Err(_) => bail!(
                            "`{}` is not a directory; refusing to go through it",
                            shown.display()
                        ),
                    };
                    if links.len() >= MAX_LINKS {
                        bail!(
                            "`{}`: too many levels of symbolic links; refusing to go through it",
                            shown.display()
                        );
                    }
                    if target.is_absolute() {
                        stack.clear();
                    }
                    let index = links.len();
                    push_target(&mut pending, &target, index);
                    links.push((shown, target));
                    continue;
                }
                Err(err) => {
                    return Err(io::Error::from(err))
                        .with_context(|| format!("cannot open `{}`", shown.display()))
                }
            };
            stack.push((next, step.name));
        }
        match stack.pop() {
            Some((fd, _)) => Ok(Some(fd)),
            None => rfs::openat(self.root_fd, ".", DIR_FLAGS, Mode::empty())
                .map(Some)
                .map_err(io::Error::from)
                .with_context(|| format!("cannot open `{}`", self.root.display())),
        }
    }

    /// The root-relative physical path of `name` below the walked stack.
    fn physical(&self, stack: &[(OwnedFd, Vec<u8>)], name: &[u8]) -> String {
        let mut parts: Vec<&[u8]> = stack.iter().map(|(_, n)| n.as_slice()).collect();
        parts.push(name);
        String::from_utf8_lossy(&parts.join(&b'/')).into_owned()
    }

    fn make(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &Path,
        physical: String,
        created: &mut dyn FnMut(String),
    ) -> Result<OwnedFd> {
        match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => created(physical),
            Err(Errno::EXIST) => {}
            Err(err) => {
                return Err(io::Error::from(err))
                    .with_context(|| format!("cannot create directory `{}`", shown.display()))
            }
        }
        rfs::openat(dir, name, DIR_FLAGS, Mode::empty())
            .map_err(io::Error::from)
            .with_context(|| format!("cannot open `{}`", shown.display()))
    }
}

/// Pushes a link target's components so that popping yields them in order.
fn push_target(pending: &mut Vec<Step>, target: &Path, link: usize) {
    let parts: Vec<Vec<u8>> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            _ => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev().map(|name| Step {
        name,
        link: Some(link),
    }));
}
