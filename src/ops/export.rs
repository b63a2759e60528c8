//! `export`: write an ESXi configuration bundle (`Manifest.txt` + `state.tgz`) of this host.
//!
//! The bundle carries the next-boot bank's current `state.tgz` as it is, verified first and
//! copied from the same open file under the bank lock; export does not run a backup (run
//! `statectl backup` first to include pending changes; export warns when there are some).
//! `Manifest.txt` is what the real `firmwareConfig.sh --restore` compares and applies:
//! `RELEASELEVEL` is `vmware -l` output (where that command is missing: `VMware ESXi <version
//! of the bank's build>`, with a warning that ESXi compares the update level too and may refuse
//! it), `UUID` this host's, `KERNELOPTS` the bank's `kernelopt`, `USEROPTS` the bank's
//! decompressed `useropts.gz` (the real restore writes it back, so an empty one would blank the
//! host's boot options). Bundles are written atomically (temp file in DIR, fsync, rename), 0600. `--keep N`
//! removes this host's older bundles beyond the newest N, matching only names of the exact
//! form `configBundle-<this host>-<yyyymmddThhmmssZ>.tgz` that are regular files; the bundle
//! just written is always kept.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::archive::bundle::{write_bundle, BundleManifest};
use crate::archive::{open_archive, read_archive_from, CheckOnly};
use crate::bank::install::read_useropts;
use crate::bank::Bank;
use crate::fs::atomic;
use crate::host::Host;
use crate::lock::{self, lock_banks};
use crate::ops::archive_path::shown;
use crate::ops::identity::host_uuid;
use crate::ops::install::next_bank;
use crate::ops::release::HostRelease;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub to: PathBuf,
    pub keep: Option<usize>,
}

/// What `export` wrote and removed.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub bundle: PathBuf,
    pub source: PathBuf,
    pub files: usize,
    pub removed: Vec<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Writes a bundle of the next-boot bank's archive into `options.to`.
pub fn export(host: &Host, options: &ExportOptions) -> Result<ExportReport> {
    let dir = &options.to;
    if !dir.is_dir() {
        bail!(
            "`{}` is not a directory; create it or name another with --to",
            dir.display()
        );
    }
    let (bank, build) = next_bank(host)?;
    let run_dir = host.run_dir()?.to_path_buf();
    let _lock = lock_banks(&run_dir, &[bank.path.as_path()], lock::DEFAULT_WAIT)?;
    let state = bank.state_archive();
    let mut file = open_archive(&state)?;
    let reader = file
        .try_clone()
        .with_context(|| format!("cannot open archive `{}`", state.display()))?;
    let summary = read_archive_from(reader, &state, &host.limits, &mut CheckOnly)?;
    summary.ensure_safe()?;
    let (target, warnings) = write_bundle_in(host, &bank, &build, &mut file, &state, dir)?;
    let name = safe_host_name(&host.hostname()?);
    let removed = match options.keep {
        Some(keep) => prune(dir, &name, &target, keep)?,
        None => Vec::new(),
    };
    Ok(ExportReport {
        bundle: shown(&target),
        source: shown(&state),
        files: summary.files.len(),
        removed,
        warnings: pending_warning(host).into_iter().chain(warnings).collect(),
    })
}

/// Writes a bundle of the `state.tgz` open as `file` (`state`, from `bank` of `build`) into
/// `dir`, named for this host and now, atomically (temp file, fsync, rename; never over an
/// existing file), after removing the temps a dead run left there. Returns its path and the
/// manifest's warnings.
pub(crate) fn write_bundle_in(
    host: &Host,
    bank: &Bank,
    build: &str,
    file: &mut std::fs::File,
    state: &Path,
    dir: &Path,
) -> Result<(PathBuf, Vec<String>)> {
    let mut warnings = Vec::new();
    let manifest = bundle_manifest(host, bank, build, &mut warnings)?;
    let (now, target) = free_bundle_name(dir, &safe_host_name(&host.hostname()?))?;
    let fail = || {
        format!(
            "cannot write bundle `{}`; check that the directory is writable and has free space",
            target.display()
        )
    };
    atomic::remove_stale_temps(dir).with_context(fail)?;
    let mut temp = atomic::temp_in(dir).with_context(fail)?;
    write_bundle(
        temp.as_file_mut(),
        &manifest,
        file,
        state,
        now.max(0) as u64,
    )
    .with_context(fail)?;
    atomic::commit_new(temp, &target).with_context(fail)?;
    Ok((target, warnings))
}

/// The bundle path for now, never an existing file: a bundle of this same second makes the
/// export wait for the next second (twice at most), as the name holds only seconds.
fn free_bundle_name(dir: &Path, host_name: &str) -> Result<(i64, PathBuf)> {
    for _ in 0..3 {
        let now = crate::clock::now();
        let target = dir.join(format!(
            "configBundle-{host_name}-{}.tgz",
            crate::clock::utc_stamp(now)
        ));
        if target.symlink_metadata().is_err() {
            return Ok((now, target));
        }
        let into_second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::thread::sleep(std::time::Duration::from_nanos(
            1_000_000_000 - u64::from(into_second) + 1_000_000,
        ));
    }
    bail!(
        "a bundle of this second already exists in `{}` (the clock does not move); it is \
         kept; export again later",
        dir.display()
    )
}

/// A warning when the host has changes its bank's archive (so the bundle) does not hold.
fn pending_warning(host: &Host) -> Option<String> {
    let changes = super::status::status(host).ok()?.changes;
    let count = changes.added.len() + changes.modified.len() + changes.removed.len();
    (count > 0).then(|| {
        format!(
            "{count} change(s) are pending (see `statectl status`): the bundle holds the \
             bank's archive, not the live files; run `statectl backup` and export again to \
             include them"
        )
    })
}

/// `Manifest.txt` for this host and bank, as `firmwareConfig.sh --backup` writes it.
fn bundle_manifest(
    host: &Host,
    bank: &Bank,
    build: &str,
    warnings: &mut Vec<String>,
) -> Result<BundleManifest> {
    let kernelopts = bank
        .cfg
        .as_ref()
        .ok()
        .and_then(|cfg| cfg.get("kernelopt"))
        .unwrap_or_default();
    let release = HostRelease::of_host(build);
    if let HostRelease::FromBuild(level) = &release {
        warnings.push(format!(
            "`vmware -l` is not available here, so RELEASELEVEL is `{level}` (from build \
             {build}); ESXi's firmwareConfig.sh compares it with its own `vmware -l`, which \
             names the update level too, and may refuse the bundle"
        ));
    }
    let useropts = match read_useropts(&bank.path)? {
        Some(text) => text.replace('\n', " "),
        None => {
            warnings.push(format!(
                "bank `{}` has no useropts.gz; USEROPTS is empty, and restoring this bundle \
                 clears the boot options",
                bank.path.display()
            ));
            String::new()
        }
    };
    Ok(BundleManifest {
        release_level: release.text().to_string(),
        uuid: host_uuid(host).unwrap_or_default(),
        kernelopts: kernelopts.to_string(),
        useropts,
    })
}

/// A host name usable in a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`.
pub(crate) fn safe_host_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "localhost".to_string(),
        _ => cleaned,
    }
}

/// The stamp of a bundle name of exactly `configBundle-<host>-<yyyymmddThhmmssZ>.tgz`.
fn bundle_stamp<'a>(file_name: &'a str, host: &str) -> Option<&'a str> {
    bundle_name_parts(file_name).and_then(|(name, stamp)| (name == host).then_some(stamp))
}

/// The host and stamp of a bundle name of the form `configBundle-<host>-<yyyymmddThhmmssZ>.tgz`.
pub(crate) fn bundle_name_parts(file_name: &str) -> Option<(&str, &str)> {
    let rest = file_name
        .strip_prefix("configBundle-")?
        .strip_suffix(".tgz")?;
    let (name, stamp) = rest.rsplit_once('-')?;
    let bytes = stamp.as_bytes();
    let shaped = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit);
    shaped.then_some((name, stamp))
}

/// Removes this host's bundles in `dir` beyond the newest `keep`, never `written`.
fn prune(dir: &Path, host: &str, written: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", dir.display()))?;
        let path = entry.path();
        let Some(stamp) = entry
            .file_name()
            .to_str()
            .and_then(|n| bundle_stamp(n, host))
            .map(str::to_string)
        else {
            continue;
        };
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        if is_file && path != written {
            found.push((stamp, path));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0));
    let mut removed = Vec::new();
    for (_, path) in found.into_iter().skip(keep.saturating_sub(1)) {
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove old bundle `{}`", path.display()))?;
        removed.push(shown(&path));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_names_match_only_this_host_and_a_stamp() {
        let stamp = "20250101T120000Z";
        assert_eq!(
            bundle_stamp(&format!("configBundle-esx01-{stamp}.tgz"), "esx01"),
            Some(stamp)
        );
        assert_eq!(
            bundle_stamp(&format!("configBundle-esx-01-{stamp}.tgz"), "esx-01"),
            Some(stamp)
        );
        for other in [
            format!("configBundle-esx-01-{stamp}.tgz"),
            format!("configBundle-esx01-{stamp}.tgz.bak"),
            "configBundle-esx01.tgz".to_string(),
            "configBundle-esx01-2025010XT120000Z.tgz".to_string(),
        ] {
            assert_eq!(bundle_stamp(&other, "esx"), None, "{other}");
        }
        assert_eq!(safe_host_name("a/b c"), "a_b_c");
        assert_eq!(safe_host_name(".."), "localhost");
    }
}
