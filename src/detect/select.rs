//! Selection: which files of the host are persisted.
//!
//! ESXi's rule (`backup.sh` of 6.7: `find etc -follow -type f -name '.#*'`, each `.#X` mapped
//! back to `X`): a regular file under a scanned directory is persisted when it has a `.#<name>`
//! sibling, the branch ESXi leaves when a flagged image file is modified. With
//! [`Rule::Sticky`] a regular file with the sticky bit (the "T flag") is persisted too. `.#*`
//! entries themselves never are (nor anything below a `.#*` directory), nor file symlinks,
//! devices, fifos or sockets. Directory symlinks are followed as `find -follow` does,
//! resolved within the root ([`inroot`]), loops detected by the (device, inode) of the
//! directories being walked; members keep the path seen through the link. `include` adds
//! files or whole trees, `exclude` globs apply last, `required` files are persisted and must be
//! non-empty. A name no reader could read back fails the selection, naming the file.
//!
//! In the branched rule only files with a branch are stat'ed: the walk costs one `readdir`
//! per directory plus one `stat` per persisted file.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::budget::Budget;
use super::inroot::{bad_component, resolve_in_root, PATH_MAX};
use crate::config::{Rule, Selection};
use crate::fs::hostfile::RootReader;
use crate::records::FileTable;

const STICKY: u32 = 0o1000;
const BRANCH_PREFIX: &str = ".#";

/// The selected files, sorted by path (each with the stat it was seen with, where it is read
/// from and whether a `.#` sibling exists), and notes about what was skipped.
#[derive(Debug, Default)]
pub struct Selected {
    pub files: FileTable,
    pub notes: Vec<String>,
}

/// Selects the persisted files under `root`.
pub fn select(root: &Path, rules: &Selection) -> Result<Selected> {
    let mut walker = Walker {
        root,
        rule: rules.rule,
        found: FileTable::new(root),
        notes: Vec::new(),
        ancestors: Vec::new(),
        dir_problem: None,
        budget: Budget::default(),
    };
    for dir in &rules.scan {
        walker.start(dir, false, true)?;
    }
    for path in &rules.include {
        walker.start(path, true, true)?;
    }
    for path in &rules.include_if_present {
        walker.start(path, true, false)?;
    }
    let mut found = walker.found;
    found.retain(|path| !rules.is_excluded(path));
    let reader = match rules.required.is_empty() {
        true => None,
        false => Some(RootReader::open(root)?),
    };
    for path in &rules.required {
        let (meta, branched) = required_file(reader.as_ref(), root, path)?;
        found.push(path, None, &meta, branched)?;
    }
    // Byte-wise path order; where a path was found twice, the later finding wins.
    found.sort_by_path();
    Ok(Selected {
        files: found,
        notes: walker.notes,
    })
}

struct Walker<'a> {
    root: &'a Path,
    rule: Rule,
    found: FileTable,
    notes: Vec<String>,
    /// (device, inode) of the directories being walked, to stop at a link loop.
    ancestors: Vec<(u64, u64)>,
    /// Why the path of the directory being walked could not be persisted, if it could not.
    dir_problem: Option<&'static str>,
    budget: Budget,
}

/// A directory entry waiting for its kind to be looked at.
struct Entry {
    name: OsString,
    kind: std::fs::FileType,
}

impl Walker<'_> {
    /// Selects under the configured path `rel`: a scanned directory (`all` false) or an
    /// included file or tree (`all` true). `warn_missing`: a missing path is a note.
    fn start(&mut self, rel: &str, all: bool, warn_missing: bool) -> Result<()> {
        let what = if all { "include" } else { "scan directory" };
        let physical = resolve_in_root(self.root, Path::new(rel))
            .with_context(|| format!("cannot resolve `{}`", self.root.join(rel).display()))?;
        let Some(physical) = physical else {
            if warn_missing {
                self.notes
                    .push(format!("{what} `{rel}` does not exist; skipped"));
            }
            return Ok(());
        };
        let abs = self.root.join(&physical);
        let meta =
            std::fs::metadata(&abs).with_context(|| format!("cannot stat `{}`", abs.display()))?;
        if meta.is_dir() {
            self.walk(&abs, rel, all, &meta)
        } else if meta.is_file() && all {
            let branched = has_branch(&abs);
            let location = self.location(abs, rel);
            self.found.push(rel, location, &meta, branched)
        } else {
            self.notes.push(format!(
                "{what} `{rel}` is not a {}; skipped",
                if all {
                    "regular file or directory"
                } else {
                    "directory"
                }
            ));
            Ok(())
        }
    }

    /// Walks the directory `abs` (seen as `rel`); with `all` every regular file is kept.
    fn walk(&mut self, abs: &Path, rel: &str, all: bool, meta: &Metadata) -> Result<()> {
        let id = (meta.dev(), meta.ino());
        if self.ancestors.contains(&id) {
            self.notes.push(format!(
                "`{rel}` leads back to a directory above it (a link loop); not followed"
            ));
            return Ok(());
        }
        self.ancestors.push(id);
        let walked = self.walk_entries(abs, rel, all);
        self.ancestors.pop();
        walked
    }

    fn walk_entries(&mut self, abs: &Path, rel: &str, all: bool) -> Result<()> {
        let (entries, branched) = list(abs)?;
        self.budget.count(rel, entries.len(), self.found.len())?;
        for entry in entries {
            let path = format!("{rel}/{}", entry.name.to_string_lossy());
            let entry_abs = abs.join(&entry.name);
            let is_branched = branched.contains(&entry.name);
            if entry.kind.is_file() {
                self.consider_file(entry_abs, path, &entry.name, all, is_branched)?;
                continue;
            }
            let outer = self.dir_problem;
            self.dir_problem = outer.or(bad_component(&entry.name));
            let walked = if entry.kind.is_dir() {
                std::fs::symlink_metadata(&entry_abs)
                    .with_context(|| format!("cannot stat `{}`", entry_abs.display()))
                    .and_then(|meta| self.walk(&entry_abs, &path, all, &meta))
            } else if entry.kind.is_symlink() {
                self.follow_link(&entry_abs, &path, all)
            } else {
                Ok(())
            };
            self.dir_problem = outer;
            walked?;
        }
        Ok(())
    }

    fn consider_file(
        &mut self,
        abs: PathBuf,
        path: String,
        name: &std::ffi::OsStr,
        all: bool,
        branched: bool,
    ) -> Result<()> {
        if !(all || branched || self.rule == Rule::Sticky) {
            return Ok(());
        }
        let meta = std::fs::symlink_metadata(&abs)
            .with_context(|| format!("cannot stat `{}`", abs.display()))?;
        let sticky = self.rule == Rule::Sticky && meta.permissions().mode() & STICKY != 0;
        if !(all || branched || sticky) {
            return Ok(());
        }
        check_name(&abs, &path, name, self.dir_problem)?;
        let location = self.location(abs, &path);
        self.found.push(&path, location, &meta, branched)
    }

    /// Where a file found at `abs` is read from, when that is not the root joined with its
    /// persisted path `rel` (it was reached through a directory symlink).
    fn location(&self, abs: PathBuf, rel: &str) -> Option<PathBuf> {
        let same = abs
            .strip_prefix(self.root)
            .is_ok_and(|p| p == Path::new(rel));
        (!same).then_some(abs)
    }

    /// Follows a symlink met in a walk: a directory inside the root is walked under the link's
    /// own path; a link to a file is skipped; a link to nothing in the root is a note.
    fn follow_link(&mut self, abs: &Path, rel: &str, all: bool) -> Result<()> {
        let physical = abs.strip_prefix(self.root).unwrap_or(abs);
        let target = resolve_in_root(self.root, physical);
        let resolved = match target {
            Ok(Some(resolved)) => self.root.join(resolved),
            Ok(None) => {
                let shown = std::fs::read_link(abs).unwrap_or_default();
                self.notes.push(format!(
                    "`{rel}` is a symlink to `{}`, which does not exist inside the root; skipped",
                    shown.display()
                ));
                return Ok(());
            }
            Err(err) => {
                self.notes.push(format!(
                    "`{rel}` is a symlink that cannot be followed ({err}); skipped"
                ));
                return Ok(());
            }
        };
        match std::fs::symlink_metadata(&resolved) {
            Ok(meta) if meta.is_dir() => self.walk(&resolved, rel, all, &meta),
            _ => Ok(()),
        }
    }
}

/// The entries of a directory except `.#*` ones, and the names those branches stand for.
fn list(dir: &Path) -> Result<(Vec<Entry>, HashSet<OsString>)> {
    let listing =
        std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    let mut entries = Vec::new();
    let mut branched = HashSet::new();
    for entry in listing {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let name = entry.file_name();
        // A statectl temp file (a restore or extract in progress) is never a persisted file.
        if name.to_str().is_some_and(crate::fs::atomic::is_temp_name) {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat `{}`", entry.path().display()))?;
        if let Some(original) = name
            .as_encoded_bytes()
            .strip_prefix(BRANCH_PREFIX.as_bytes())
        {
            if kind.is_file() {
                // SAFETY: a suffix of an OsStr's encoded bytes after an ASCII prefix is valid.
                let original = unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(original) };
                branched.insert(original.to_os_string());
            }
            continue;
        }
        entries.push(Entry { name, kind });
    }
    Ok((entries, branched))
}

/// Fails when the persisted path `rel` of `abs` could not be read back by the archive readers;
/// `inherited` is what is wrong with a directory above it, if anything.
fn check_name(
    abs: &Path,
    rel: &str,
    name: &std::ffi::OsStr,
    inherited: Option<&'static str>,
) -> Result<()> {
    let problem = bad_component(name)
        .or(inherited)
        .or_else(|| (rel.len() > PATH_MAX).then_some("its path is over 4096 bytes"));
    match problem {
        Some(reason) => bail!(
            "cannot persist `{}`: {reason}, so no archive reader could restore it; rename it \
             or add it to `exclude` in the config",
            abs.display().to_string().escape_debug()
        ),
        None => Ok(()),
    }
}

/// The stat of the required file `path` (opened through the in-root walk of `reader`, as
/// the writer will read it: the root's links lead to the root's files), and whether it has a
/// `.#` sibling.
fn required_file(reader: Option<&RootReader>, root: &Path, path: &str) -> Result<(Metadata, bool)> {
    let abs = root.join(path);
    let opened = match reader {
        Some(reader) => reader.open_file(Path::new(path)),
        None => Ok(None),
    };
    let meta = match opened {
        Ok(Some((_, meta))) => meta,
        Ok(None) => bail!(
            "required file `{}` is missing; restore it or remove it from `required` in the config",
            abs.display()
        ),
        Err(err) => {
            return Err(err.context(format!("required file `{}` cannot be read", abs.display())))
        }
    };
    if meta.len() == 0 {
        bail!(
            "required file `{}` is empty; restore it or remove it from `required` in the config",
            abs.display()
        );
    }
    Ok((meta, has_branch(&abs)))
}

fn has_branch(abs: &Path) -> bool {
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => {
            let mut branch = OsString::from(BRANCH_PREFIX);
            branch.push(name);
            std::fs::symlink_metadata(dir.join(branch)).is_ok_and(|m| m.is_file())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, mode: u32) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn paths(root: &Path, rules: &Selection) -> Vec<String> {
        let files = select(root, rules).unwrap().files;
        files.indices().map(|i| files.path(i).to_string()).collect()
    }

    #[test]
    fn branches_select_files_and_links_keep_their_logical_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "etc/hosts", 0o1644);
        write(root, "etc/.#hosts", 0o644);
        write(root, "etc/motd", 0o1644);
        write(root, "etc/.#orphan", 0o644);
        write(root, "etc/.#d/x", 0o1644);
        write(root, "etc/.#d/.#x", 0o644);
        write(root, "var/repo/a.idx", 0o644);
        write(root, "var/repo/.#a.idx", 0o644);
        std::fs::create_dir_all(root.join("etc/sfcb")).unwrap();
        symlink("/var/repo", root.join("etc/sfcb/repository")).unwrap();
        symlink("/etc", root.join("etc/sfcb/loop")).unwrap();
        let rules = Selection::parse("").unwrap();
        assert_eq!(
            paths(root, &rules),
            vec!["etc/hosts", "etc/sfcb/repository/a.idx"]
        );
        let sticky = Selection::parse("select = \"sticky\"").unwrap();
        assert_eq!(
            paths(root, &sticky),
            vec!["etc/hosts", "etc/motd", "etc/sfcb/repository/a.idx"]
        );
        let notes = select(root, &rules).unwrap().notes;
        assert!(notes.iter().any(|n| n.contains("loop")), "{notes:?}");
    }
}
