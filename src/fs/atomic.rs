//! Atomic, durable file replacement: temp file in the target directory, write, fsync, rename,
//! fsync the directory.
//!
//! The one temp-file discipline of every writing command. A temp file or directory is named
//! `.statectl-<pid>-<random>.tmp` ([`is_temp_name`]): dot-prefixed, never `.#`, and excluded by
//! name from every selection, so no backup ever archives one. Files are created 0600 (beside
//! their target, where the rename must stay in one directory), directories 0700. A run killed at
//! any instant leaves the old file or the new one, plus at most temps that the next run of any
//! command writing the same place removes with [`remove_stale_temps`]: a temp whose writer (the
//! pid in its name) is gone. Nothing here prints.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// Name prefix of every temp file statectl creates beside a file it replaces.
pub const TEMP_PREFIX: &str = ".statectl-";
/// Name suffix of every temp file statectl creates beside a file it replaces.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Creates a 0600 temp file in `dir`, ready to be filled and then [`commit`]ted.
pub fn temp_in(dir: &Path) -> Result<NamedTempFile> {
    let prefix = temp_prefix();
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in `{}`", dir.display()))
}

/// Creates a 0700 temp directory in `dir`, removed (with its content) when dropped.
pub fn temp_dir_in(dir: &Path) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = temp_prefix();
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(dir)
        .with_context(|| {
            format!(
                "cannot create a private temp directory in `{}`",
                dir.display()
            )
        })
}

/// The prefix of this process's temp names: `.statectl-<pid>-`.
pub fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

/// True for the name of a statectl temp file or directory (any version's): such a name is
/// never selected for an archive.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) && name.len() > TEMP_PREFIX.len()
}

/// True when the temp `name` belongs to a run still alive (this one included), by the pid in
/// its name; a name without one (older versions) belongs to nobody.
pub fn temp_in_use(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    crate::process::is_alive(pid)
}

/// Flushes `temp` to disk, renames it over `target` and makes the rename durable.
/// On error the temp file is removed and `target` is untouched.
pub fn commit(temp: NamedTempFile, target: &Path) -> Result<()> {
    temp.as_file()
        .sync_all()
        .with_context(|| format!("cannot flush `{}` to disk", temp.path().display()))?;
    temp.persist(target)
        .map_err(|err| err.error)
        .with_context(|| format!("cannot rename a temp file over `{}`", target.display()))?;
    sync_dir(parent_of(target))
}

/// As [`commit`], but never replaces an existing `target` (the name must still be free).
pub fn commit_new(temp: NamedTempFile, target: &Path) -> Result<()> {
    temp.as_file()
        .sync_all()
        .with_context(|| format!("cannot flush `{}` to disk", temp.path().display()))?;
    temp.persist_noclobber(target)
        .map_err(|err| err.error)
        .with_context(|| {
            format!(
                "cannot create `{}` (it must not exist yet)",
                target.display()
            )
        })?;
    sync_dir(parent_of(target))
}

/// Writes `bytes` to `target` atomically and durably, with `mode`.
pub fn write_atomically(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut temp = temp_in(parent_of(target))?;
    temp.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", target.display()))?;
    if mode != 0o600 {
        let set = temp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode));
        match set {
            Err(err) if !modes_unsupported(&err) => {
                return Err(err)
                    .with_context(|| format!("cannot set the mode of `{}`", temp.path().display()))
            }
            _ => {}
        }
    }
    commit(temp, target)
}

/// True for the errors a filesystem without Unix modes gives to a chmod of a file we own:
/// FAT boot banks (`vfat` says EPERM, `fusefat` ENOSYS). The mode is then simply not kept.
fn modes_unsupported(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM)
    )
}

/// Fsyncs a directory so a rename inside it survives power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("cannot flush directory `{}` to disk", dir.display()))
}

/// Removes the temp files and directories a killed run left in `dir` (those whose writer is
/// gone); returns the paths removed. Lists the directory only, so a clean directory gets no
/// write.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(err) => return Err(err).with_context(|| format!("cannot list `{}`", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_temp_name(&name) && !temp_in_use(&name) {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            let done = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match done {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(err).with_context(|| {
                        format!("cannot remove stale temp file `{}`", path.display())
                    })
                }
                _ => removed.push(path),
            }
        }
    }
    Ok(removed)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_atomically_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.tgz");
        std::fs::write(&target, b"old").unwrap();
        write_atomically(&target, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".statectl-abc.tmp"), b"x").unwrap();
        std::fs::create_dir(dir.path().join(".statectl-999999999-d.tmp")).unwrap();
        std::fs::write(dir.path().join("boot.cfg"), b"x").unwrap();
        let ours = temp_in(dir.path()).unwrap();
        let removed = remove_stale_temps(dir.path()).unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(dir.path().join("boot.cfg").exists());
        assert!(ours.path().exists(), "a live run's temp is kept");
        let name = ours
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(is_temp_name(&name) && temp_in_use(&name), "{name}");
    }
}
