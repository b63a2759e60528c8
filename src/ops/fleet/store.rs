//! The layout of a copy store: `DIR/<host id>/configBundle-<host>-<yyyymmddThhmmssZ>.tgz`.
//!
//! Listing only: which subdirectories are hosts and which of their files are copies, by name
//! and file type (a symlink, a directory or a temp file is never a copy), oldest first. Every
//! host may write the store, so nothing listed here is trusted: names are parsed, never used
//! to build a path outside the directory they were listed from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::fs::atomic::is_temp_name;
use crate::host::Host;
use crate::ops::export::{bundle_name_parts, safe_host_name};
use crate::ops::identity::host_uuid;

/// One copy in a host's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFile {
    pub path: PathBuf,
    /// The host name in the file name.
    pub host: String,
    /// Seconds since the epoch, from the stamp in the name.
    pub time: i64,
}

/// This host's directory name in a store: its UUID, else its host name, made file-name safe.
pub fn host_id(host: &Host) -> Result<String> {
    let id = match host_uuid(host) {
        Some(uuid) => uuid,
        None => host.hostname()?,
    };
    Ok(safe_host_name(&id))
}

/// Fails unless `store` is an existing directory (a store is never created: it is a
/// datastore someone mounts).
pub fn check_store(store: &Path) -> Result<()> {
    match std::fs::metadata(store) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!(
            "copy directory `{}` is not a directory; name the shared datastore's directory",
            store.display()
        ),
        Err(err) => Err(err).with_context(|| {
            format!(
                "cannot open copy directory `{}`; mount the datastore or name another directory",
                store.display()
            )
        }),
    }
}

/// A host directory of a store: its id (the directory name) and path.
pub type HostDir = (String, PathBuf);

/// The host directories of `store`, sorted by id; entries that are not plain directories are
/// returned as warnings.
pub fn host_dirs(store: &Path) -> Result<(Vec<HostDir>, Vec<String>)> {
    check_store(store)?;
    let list = || format!("cannot list copy directory `{}`", store.display());
    let mut hosts = Vec::new();
    let mut warnings = Vec::new();
    for entry in std::fs::read_dir(store).with_context(list)? {
        let entry = entry.with_context(list)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => hosts.push((name, entry.path())),
            _ => warnings.push(format!(
                "`{}` is not a host directory; it was left out",
                entry.path().display()
            )),
        }
    }
    hosts.sort();
    Ok((hosts, warnings))
}

/// The copies in a host directory, oldest first (regular files named as bundles only).
pub fn copies_in(dir: &Path) -> Result<Vec<CopyFile>> {
    let list = || format!("cannot list copies in `{}`", dir.display());
    let mut copies = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(list)? {
        let entry = entry.with_context(list)?;
        let name = entry.file_name();
        let Some((host, time)) = name.to_str().and_then(|name| {
            let (host, stamp) = bundle_name_parts(name)?;
            Some((host.to_string(), crate::clock::parse_utc_stamp(stamp)?))
        }) else {
            continue;
        };
        if entry.file_type().is_ok_and(|kind| kind.is_file()) {
            copies.push(CopyFile {
                path: entry.path(),
                host,
                time,
            });
        }
    }
    copies.sort_by(|a, b| (a.time, &a.path).cmp(&(b.time, &b.path)));
    Ok(copies)
}

/// The copies to remove: all but the newest `keep` and the newest of each of the last
/// `keep_daily` UTC days before and including `now`'s.
pub fn beyond_retention(
    copies: &[CopyFile],
    keep: usize,
    keep_daily: usize,
    now: i64,
) -> Vec<&CopyFile> {
    let today = now.div_euclid(86_400);
    let mut days_kept = Vec::new();
    let mut removed = Vec::new();
    for (rank, copy) in copies.iter().rev().enumerate() {
        let day = copy.time.div_euclid(86_400);
        let recent_day = day <= today && today - day < keep_daily as i64;
        let newest_of_day = recent_day && !days_kept.contains(&day);
        if newest_of_day {
            days_kept.push(day);
        }
        if rank >= keep && !newest_of_day {
            removed.push(copy);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(time: i64) -> CopyFile {
        CopyFile {
            path: PathBuf::from(format!("c{time}")),
            host: "h".into(),
            time,
        }
    }

    #[test]
    fn retention_keeps_the_newest_and_one_a_day() {
        let day = 86_400;
        let now = 100 * day + 10;
        // Hourly for three days: 0h..23h of days 98, 99 and up to now on day 100.
        let copies: Vec<CopyFile> = (0..72).map(|h| copy(98 * day + h * 3600)).collect();
        let removed = beyond_retention(&copies, 2, 2, now);
        let kept: Vec<i64> = copies
            .iter()
            .filter(|c| !removed.contains(c))
            .map(|c| c.time)
            .collect();
        // The two newest (both on day 100), the newest of day 99; day 98 is beyond 2 days.
        assert_eq!(
            kept,
            vec![
                99 * day + 23 * 3600,
                100 * day + 22 * 3600,
                100 * day + 23 * 3600
            ]
        );
        assert!(beyond_retention(&copies, 100, 0, now).is_empty());
        assert_eq!(beyond_retention(&copies, 1, 0, now).len(), 71);
    }
}
