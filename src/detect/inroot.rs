//! Paths as the host sees them when `--root` is its `/`: symlinks resolved *within* the root
//! (an absolute target is taken relative to the root, `..` stops at the root), and the name
//! rules a persisted path must meet so every reader can read it back.
//!
//! Selection only reads, so this walk uses plain path calls; writing (restore, extract) uses
//! the descriptor walk of `restore::place`, which resolves links the same way.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before it counts as a loop (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;
/// The longest component and path a persisted name may have (Linux `NAME_MAX`, `PATH_MAX`).
pub const NAME_MAX: usize = 255;
pub const PATH_MAX: usize = 4096;

/// Resolves root-relative `rel` within `root`, following every symlink on the way; returns
/// the root-relative physical path (no symlink in it), or `None` when a component is missing
/// or is not a directory where one is needed.
pub fn resolve_in_root(root: &Path, rel: &Path) -> io::Result<Option<PathBuf>> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut physical = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                physical.pop();
                continue;
            }
            _ => {}
        }
        physical.push(&part);
        let meta = match std::fs::symlink_metadata(root.join(&physical)) {
            Ok(meta) => meta,
            Err(err) if is_missing(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::other("too many levels of symbolic links"));
        }
        let target = std::fs::read_link(root.join(&physical))?;
        physical.pop();
        if target.is_absolute() {
            physical = PathBuf::new();
        }
        push_components(&mut pending, &target);
    }
    Ok(Some(physical))
}

/// Pushes the components of `path` so that popping yields them in order.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

fn is_missing(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// Why a directory entry's name cannot be part of a persisted path, if it cannot.
pub fn bad_component(name: &OsStr) -> Option<&'static str> {
    let Some(text) = name.to_str() else {
        return Some("its name is not valid UTF-8");
    };
    if text.chars().any(char::is_control) {
        return Some("its name holds a control character");
    }
    if text.len() > NAME_MAX {
        return Some("a component of its name is over 255 bytes");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_and_dotdot_targets_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("var/lib/repo")).unwrap();
        std::fs::create_dir_all(r.join("etc/sfcb")).unwrap();
        symlink("/var/lib/repo", r.join("etc/sfcb/repository")).unwrap();
        symlink("../../../../../../var/lib", r.join("etc/up")).unwrap();
        let found = resolve_in_root(r, Path::new("etc/sfcb/repository")).unwrap();
        assert_eq!(found, Some(PathBuf::from("var/lib/repo")));
        let up = resolve_in_root(r, Path::new("etc/up/repo")).unwrap();
        assert_eq!(up, Some(PathBuf::from("var/lib/repo")));
        symlink("/nonexistent-outside", r.join("etc/gone")).unwrap();
        assert_eq!(resolve_in_root(r, Path::new("etc/gone")).unwrap(), None);
    }

    #[test]
    fn link_loops_are_an_error() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(resolve_in_root(root.path(), Path::new("a")).is_err());
    }

    #[test]
    fn names_readers_refuse_are_named() {
        assert_eq!(bad_component(OsStr::new("hosts")), None);
        assert!(bad_component(OsStr::from_bytes(b"\xff")).is_some());
        assert!(bad_component(OsStr::new("a\nb")).is_some());
        assert!(bad_component(OsStr::new(&"x".repeat(256))).is_some());
    }
}
