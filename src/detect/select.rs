//! Selection: which files of the host are persisted.
//!
//! A regular file under a scanned directory is persisted when it carries the sticky bit (the
//! "T flag") or has a `.#<name>` sibling (ESXi's branch of a modified flagged file). `.#*` files
//! themselves, symlinks, devices, fifos and sockets never are; symlinked directories are not
//! followed. `include` adds files or whole trees, `exclude` globs apply last, `required` files
//! are persisted and must be non-empty.

use std::collections::HashSet;
use std::fs::Metadata;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::Selection;

const STICKY: u32 = 0o1000;
const BRANCH_PREFIX: &str = ".#";

/// A file chosen for the archive, with the stat it was seen with.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: String,
    pub abs: PathBuf,
    pub meta: Metadata,
    /// A `.#` sibling exists (the file was modified since boot).
    pub branched: bool,
}

/// The selected files, sorted by path, and notes about what was skipped.
#[derive(Debug, Default)]
pub struct Selected {
    pub files: Vec<Candidate>,
    pub notes: Vec<String>,
}

/// Selects the persisted files under `root`.
pub fn select(root: &Path, rules: &Selection) -> Result<Selected> {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for dir in &rules.scan {
        let abs = root.join(dir);
        match std::fs::symlink_metadata(&abs) {
            Ok(meta) if meta.is_dir() => walk(&abs, dir, &mut found, &mut notes, true)?,
            Ok(_) => notes.push(format!(
                "scan directory `{dir}` is not a directory; skipped"
            )),
            Err(_) => notes.push(format!("scan directory `{dir}` does not exist; skipped")),
        }
    }
    for path in &rules.include {
        add_included(root, path, &mut found, &mut notes)?;
    }
    found.retain(|c: &Candidate| !rules.is_excluded(&c.path));
    for path in &rules.required {
        found.push(required_file(root, path)?);
    }
    // Byte-wise path order; where a path was found twice, the later finding wins.
    found.reverse();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|later, kept| later.path == kept.path);
    Ok(Selected {
        files: found,
        notes,
    })
}

/// Walks `dir`; with `flagged_only`, keeps sticky or branched files, else every regular file.
fn walk(
    dir: &Path,
    rel: &str,
    found: &mut Vec<Candidate>,
    notes: &mut Vec<String>,
    flagged_only: bool,
) -> Result<()> {
    let listing =
        std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    let mut entries = Vec::new();
    let mut branched = HashSet::new();
    for entry in listing {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            notes.push(format!(
                "skipped `{}`: its name is not valid UTF-8",
                entry.path().display()
            ));
            continue;
        };
        if crate::atomic::is_temp_name(name) {
            continue;
        }
        if let Some(original) = name.strip_prefix(BRANCH_PREFIX) {
            branched.insert(original.to_string());
            continue;
        }
        entries.push((name.to_string(), entry));
    }
    for (name, entry) in entries {
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat `{}`", entry.path().display()))?;
        let path = format!("{rel}/{name}");
        if kind.is_dir() {
            walk(&entry.path(), &path, found, notes, flagged_only)?;
        } else if kind.is_file() {
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot stat `{}`", entry.path().display()))?;
            let is_branched = branched.contains(&name);
            if !flagged_only || is_branched || meta.permissions().mode() & STICKY != 0 {
                found.push(Candidate {
                    abs: entry.path(),
                    meta,
                    branched: is_branched,
                    path,
                });
            }
        }
    }
    Ok(())
}

fn add_included(
    root: &Path,
    path: &str,
    found: &mut Vec<Candidate>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let abs = root.join(path);
    let Ok(meta) = std::fs::symlink_metadata(&abs) else {
        notes.push(format!("include `{path}` does not exist; skipped"));
        return Ok(());
    };
    if meta.is_dir() {
        walk(&abs, path, found, notes, false)
    } else if meta.is_file() {
        let branched = has_branch(&abs);
        found.push(Candidate {
            path: path.to_string(),
            abs,
            meta,
            branched,
        });
        Ok(())
    } else {
        notes.push(format!(
            "include `{path}` is not a regular file or directory; skipped"
        ));
        Ok(())
    }
}

fn required_file(root: &Path, path: &str) -> Result<Candidate> {
    let abs = root.join(path);
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(meta) => meta,
        Err(_) => bail!(
            "required file `{}` is missing; restore it or remove it from `required` in the config",
            abs.display()
        ),
    };
    if !meta.is_file() {
        bail!("required file `{}` is not a regular file", abs.display());
    }
    if meta.len() == 0 {
        bail!(
            "required file `{}` is empty; restore it or remove it from `required` in the config",
            abs.display()
        );
    }
    Ok(Candidate {
        branched: has_branch(&abs),
        path: path.to_string(),
        abs,
        meta,
    })
}

fn has_branch(abs: &Path) -> bool {
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => {
            let mut branch = std::ffi::OsString::from(BRANCH_PREFIX);
            branch.push(name);
            std::fs::symlink_metadata(dir.join(branch)).is_ok()
        }
        _ => false,
    }
}
