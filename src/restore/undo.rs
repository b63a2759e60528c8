//! The undo archive: the current versions of the files a restore is about to overwrite (or
//! remove), saved in the `state.tgz` format before any of them is touched, plus in its
//! manifest's `remove` the files the restore creates, so `statectl restore UNDO` brings the
//! host back: overwritten files return, created ones are removed.
//!
//! An existing undo file is never overwritten: `--undo FILE` naming an existing file refuses
//! the restore before anything is written (a re-run of a cut-short restore would otherwise
//! replace the only copy of the original files), and the default name takes `-2`, `-3`, ...
//!
//! Where it goes: `--undo FILE` (written through a temp file beside it, linked into place only
//! if the name is still free), else
//! `<root>/var/lib/statectl/undo-<UTC yyyymmddThhmmssZ>.tgz`, placed through the [`Placer`] so
//! not even the undo directory can be redirected by a link in the target. Always 0600: it holds
//! copies of files such as `etc/shadow`. On ESXi `<root>/var/lib` lives in RAM until the next
//! reboot; name a datastore path with `--undo` to keep it longer.

use std::io::Seek;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::place::{FileMeta, Placer};
use super::plan::{Action, Plan};
use crate::archive::writer::{table_under, write_archive_removing};
use crate::archive::ArchiveLabel;
use crate::fs::atomic;

/// The directory of default undo archives, relative to the root.
pub const UNDO_DIR: &str = "var/lib/statectl";

/// The default undo archive path (relative to the root) for a restore at `now`.
pub fn default_undo_rel(now: i64) -> String {
    format!("{UNDO_DIR}/undo-{}.tgz", crate::clock::utc_stamp(now))
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

/// Refuses an `--undo FILE` that exists: it is never overwritten.
pub fn check_undo_free(explicit: Option<&Path>) -> Result<()> {
    match explicit {
        Some(target) if target.symlink_metadata().is_ok() => anyhow::bail!(
            "undo archive `{}` already exists (it may hold the files of an earlier restore); \
             nothing was restored; name a new file with --undo, or move that one away",
            target.display()
        ),
        _ => Ok(()),
    }
}

/// Saves the files `plan` replaces into an undo archive that also lists the files it creates;
/// `None` when it does neither. `explicit` is `--undo FILE`; `scratch` holds the writer's
/// temp file.
pub fn save_undo(
    placer: &Placer,
    plan: &Plan,
    explicit: Option<&Path>,
    label: &ArchiveLabel,
    scratch: &Path,
    now: i64,
) -> Result<Option<PathBuf>> {
    // Each copy is read through the in-root walk, as the restore writes it: the root's own
    // links (ESXi's `etc/sfcb/repository -> /var/lib/...`) lead to the root's files.
    let mut sources = table_under(placer.root(), plan.replaced())?;
    let created = plan.paths(Action::Create);
    if sources.is_empty() && created.is_empty() {
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
        check_undo_free(explicit)?;
        atomic::remove_stale_temps(dir).with_context(|| fail(target))?;
        let mut temp = atomic::temp_in(dir).with_context(|| fail(target))?;
        write_archive_removing(temp.as_file_mut(), &mut sources, &created, label, scratch)
            .with_context(|| fail(target))?;
        atomic::commit_new(temp, target).with_context(|| fail(target))?;
        return Ok(Some(target.to_path_buf()));
    }
    let rel = free_undo_rel(placer, now)?;
    let target = placer.root().join(&rel);
    let mut temp = tempfile::tempfile_in(scratch).with_context(|| fail(&target))?;
    write_archive_removing(&mut temp, &mut sources, &created, label, scratch)
        .with_context(|| fail(&target))?;
    temp.rewind().with_context(|| fail(&target))?;
    let meta = FileMeta {
        mode: 0o600,
        uid: crate::process::effective_uid(),
        gid: crate::process::effective_gid(),
        mtime: now,
    };
    placer
        .place(&rel, &mut temp, &meta)
        .with_context(|| fail(&target))?;
    Ok(Some(target))
}
