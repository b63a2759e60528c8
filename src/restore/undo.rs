//! The undo archive: the current versions of the files a restore is about to overwrite, saved
//! in the `state.tgz` format before any of them is touched, so `statectl restore UNDO` brings
//! the host back.
//!
//! Where it goes: `--undo FILE` (written through a temp file beside it and renamed), else
//! `<root>/var/lib/statectl/undo-<UTC yyyymmddThhmmssZ>.tgz`, placed through the [`Placer`] so
//! not even the undo directory can be redirected by a link in the target. Always 0600: it holds
//! copies of files such as `etc/shadow`. On ESXi `<root>/var/lib` lives in RAM until the next
//! reboot; name a datastore path with `--undo` to keep it longer.

use std::io::Seek;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::place::{FileMeta, Placer};
use super::plan::Plan;
use crate::archive::{write_archive, ArchiveLabel, SourceFile};
use crate::atomic;

/// The directory of default undo archives, relative to the root.
pub const UNDO_DIR: &str = "var/lib/statectl";

/// The default undo archive path (relative to the root) for a restore at `now`.
pub fn default_undo_rel(now: i64) -> String {
    format!("{UNDO_DIR}/undo-{}.tgz", crate::timefmt::utc_stamp(now))
}

/// The default undo path, with `-2`, `-3`, ... when an undo archive of the same second exists.
fn free_undo_rel(placer: &Placer, now: i64) -> Result<String> {
    let base = default_undo_rel(now);
    let mut rel = base.clone();
    let mut n = 1;
    while placer.existing(&rel)? != super::place::Existing::Absent {
        n += 1;
        rel = format!("{}-{n}.tgz", base.trim_end_matches(".tgz"));
    }
    Ok(rel)
}

/// Saves the files `plan` overwrites into an undo archive; `None` when it overwrites nothing.
/// `explicit` is `--undo FILE`; `scratch` holds the writer's temp file.
pub fn save_undo(
    placer: &Placer,
    plan: &Plan,
    explicit: Option<&Path>,
    label: &ArchiveLabel,
    scratch: &Path,
    now: i64,
) -> Result<Option<PathBuf>> {
    let sources: Vec<SourceFile> = plan
        .overwritten()
        .map(|record| SourceFile {
            path: record.path.clone(),
            abs: placer.root().join(&record.path),
        })
        .collect();
    if sources.is_empty() {
        return Ok(None);
    }
    let fail = |target: &Path| {
        format!(
            "cannot write the undo archive `{}` (nothing was restored); name another place \
             with --undo FILE",
            target.display()
        )
    };
    if let Some(target) = explicit {
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut temp = atomic::temp_in(dir).with_context(|| fail(target))?;
        write_archive(temp.as_file_mut(), &sources, label, scratch)
            .with_context(|| fail(target))?;
        atomic::commit(temp, target).with_context(|| fail(target))?;
        return Ok(Some(target.to_path_buf()));
    }
    let rel = free_undo_rel(placer, now)?;
    let target = placer.root().join(&rel);
    let mut temp = tempfile::tempfile_in(scratch).with_context(|| fail(&target))?;
    write_archive(&mut temp, &sources, label, scratch).with_context(|| fail(&target))?;
    temp.rewind().with_context(|| fail(&target))?;
    let meta = FileMeta {
        mode: 0o600,
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        mtime: now,
    };
    placer
        .place(&rel, &mut temp, &meta)
        .with_context(|| fail(&target))?;
    Ok(Some(target))
}
