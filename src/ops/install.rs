//! `install`: put a `state.tgz` or an ESXi `configBundle-*.tgz` into the next-boot bank, the
//! firmware-restore path of `firmwareConfig.sh --restore`.
//!
//! Checks, in order, as `firmwareConfig.sh --restore` does where it can be told apart: the
//! input is a `state.tgz` or a bundle with a `Manifest.txt` (`archive::bundle`; a bundle
//! without one is "invalid"); the archive verifies completely; it holds at least one file and
//! only members under the scanned and included paths (both forceable: a wrong `pack` makes
//! such archives); its release is this host's (never forceable, as ESXi: state from another
//! release can leave a host that does not boot); the UUID it comes from (a bundle's `UUID`,
//! else `/system/uuid` of the archive's own `etc/vmware/esx.conf` or its `etc/machine-id`)
//! matches this host's (forceable; not checked when the archive names none). Then, under the
//! bank lock, the verified copy into the bank, a bundle's boot options (`KERNELOPTS` into
//! `kernelopt=`, `USEROPTS` into `useropts.gz`) and `boot.cfg` made to list `state.tgz`.
//! Nothing in the bank changes before every check passed.
//!
//! Release comparison: a bundle's `RELEASELEVEL` must equal this host's `vmware -l` output, as
//! the script's string comparison does; where `vmware` is missing, the version triple of
//! `RELEASELEVEL` must equal that of the bank's `build`, with a warning that the update level
//! was not checked. A statectl manifest inside the archive that records a `build` must be of
//! the bank's version triple; another build of that release is a warning (ESXi does not
//! compare builds). A bare `state.tgz` without a recorded build cannot be checked: it is
//! installed with a warning.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::archive::bundle::{open_input, BundleManifest, Input};
use crate::archive::{open_archive, read_archive_from, ArchiveSummary, STATE_NAME};
use crate::bank::install::{apply_boot_options, copy_verified, ensure_state_listed};
use crate::bank::{next_boot, read_banks, Bank};
use crate::fs::atomic;
use crate::host::Host;
use crate::lock::{self, lock_for_writing};
use crate::ops::archive_path::shown;
use crate::ops::checks::{other_release, Checks};
use crate::ops::identity::{host_uuid, IdentityFiles};
use crate::ops::pending;
use crate::ops::release::{release_of_build, version_triple, HostRelease};

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub archive: PathBuf,
    pub force: bool,
    /// Reboot afterwards (the caller runs `reboot`): refused up front unless the root is `/`.
    pub reboot: bool,
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub source: PathBuf,
    /// `state.tgz` or `configBundle`.
    pub kind: &'static str,
    pub bank: PathBuf,
    pub archive: PathBuf,
    pub build: String,
    pub files: usize,
    pub sha256: String,
    /// The archive this install replaced, kept for `statectl install` to put back.
    pub replaced: Option<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// The name the archive an install replaced is kept under, in the bank.
pub const REPLACED_NAME: &str = "state-replaced.tgz";

/// The next-boot bank and its build, or a message saying why there is none.
pub fn next_bank(host: &Host) -> Result<(Bank, String)> {
    let banks = read_banks(host);
    let Some(name) = next_boot(&banks) else {
        bail!(
            "no eligible boot bank (bootbank `{}`: {}; altbootbank `{}`: {}); fix boot.cfg first",
            banks.bootbank.path.display(),
            banks.bootbank.eligibility().err().unwrap_or_default(),
            banks.altbootbank.path.display(),
            banks.altbootbank.eligibility().err().unwrap_or_default(),
        );
    };
    let bank = banks.get(name).clone();
    let build = bank.build().unwrap_or_default().to_string();
    Ok((bank, build))
}

/// Installs `options.archive` into the next-boot bank.
pub fn install(host: &Host, options: &InstallOptions) -> Result<InstallReport> {
    if options.reboot && host.root.canonicalize().ok().as_deref() != Some(Path::new("/")) {
        bail!(
            "--reboot reboots this machine, but --root is `{}`, not this machine's /; nothing \
             was installed; leave out --reboot and reboot the host the root belongs to",
            host.root.display()
        );
    }
    let (bank, build) = next_bank(host)?;
    let run_dir = host.run_dir()?.to_path_buf();
    let source = &options.archive;
    let input = open_input(source, &host.limits, &run_dir)?;
    let (state_path, shown_as, manifest) = match &input {
        Input::State => (source.clone(), source.clone(), None),
        Input::Bundle { manifest, state } => (
            state.path().to_path_buf(),
            PathBuf::from(format!("{} (its {STATE_NAME})", source.display())),
            Some(manifest),
        ),
    };
    let mut identity = IdentityFiles::default();
    let summary = read_archive_from(
        open_archive(&state_path)?,
        &shown_as,
        &host.limits,
        &mut identity,
    )?;
    summary.ensure_safe()?;
    let stale = summary.stale_manifest_warning().into_iter().collect();
    let mut checks = Checks::new(options.force, "installing", stale);
    check_contents(host, &summary, &mut checks)?;
    check_release(&summary, manifest, &bank, &build, &mut checks);
    let origin = match manifest {
        Some(bundle) => Some(bundle.uuid.clone()),
        None => identity.uuid(),
    };
    if let Some(origin) = origin {
        check_uuid(host, &origin, &mut checks);
    }
    let mut warnings = checks.finish(source, "nothing was installed")?;
    let _lock = lock_for_writing(host, &[bank.path.as_path()], lock::DEFAULT_WAIT)?;
    // Advisory: leftovers of a killed run only cost space.
    let _ = atomic::remove_stale_temps(&bank.path);
    let target = bank.state_archive();
    let kept = stage_replaced(&target)?;
    let sha256 = copy_verified(&state_path, &target, Some(&summary.sha256))?;
    let replaced = commit_replaced(kept, &bank.path)?;
    if let Some(bundle) = manifest {
        apply_boot_options(&bank.path, &bundle.kernelopts, &bundle.useropts)?;
    }
    warnings.extend(ensure_state_listed(std::slice::from_ref(&bank.path))?);
    // Still under the bank lock: no backup runs between the copy and the marker.
    let marker = pending::remember(
        &run_dir,
        &host.root,
        &bank.path,
        &sha256,
        replaced.as_deref(),
    );
    if let Err(err) = marker {
        warnings.push(format!(
            "the install is in place but could not be remembered until the reboot ({err:#}); \
             a backup before the reboot would save the running state over it: reboot now"
        ));
    }
    Ok(InstallReport {
        source: shown(source),
        kind: if manifest.is_some() {
            "configBundle"
        } else {
            "state.tgz"
        },
        bank: shown(&bank.path),
        archive: shown(&target),
        build,
        files: summary.files.len(),
        sha256,
        replaced: replaced.map(|path| shown(&path)),
        warnings,
    })
}

/// A synced copy of the bank's current archive in a temp file beside it (`None` when there is
/// none), renamed to [`REPLACED_NAME`] only once the new archive is in: a source that is that
/// kept archive itself is read intact.
fn stage_replaced(target: &Path) -> Result<Option<tempfile::NamedTempFile>> {
    let mut current = match std::fs::File::open(target) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot open `{}`", target.display())),
    };
    let bank = target.parent().unwrap_or(Path::new("."));
    let fail = || {
        format!(
            "cannot keep a copy of `{}` in bank `{}` (nothing was installed); check that it \
             has free space",
            target.display(),
            bank.display()
        )
    };
    let mut temp = atomic::temp_in(bank).with_context(fail)?;
    std::io::copy(&mut current, temp.as_file_mut()).with_context(fail)?;
    temp.as_file().sync_all().with_context(fail)?;
    Ok(Some(temp))
}

fn commit_replaced(kept: Option<tempfile::NamedTempFile>, bank: &Path) -> Result<Option<PathBuf>> {
    let Some(kept) = kept else {
        return Ok(None);
    };
    let path = bank.join(REPLACED_NAME);
    atomic::commit(kept, &path).with_context(|| {
        format!(
            "the archive is installed, but the one it replaced could not be kept as `{}`",
            path.display()
        )
    })?;
    Ok(Some(path))
}

fn check_release(
    summary: &ArchiveSummary,
    bundle: Option<&BundleManifest>,
    bank: &Bank,
    build: &str,
    checks: &mut Checks,
) {
    let archived_build = summary.manifest.as_ref().map(|m| m.build.as_str());
    let refuse = |checks: &mut Checks, found: &str, ours: &str| {
        let ours = format!("{ours} (bank `{}`, build {build})", bank.path.display());
        checks.never(other_release(found, archived_build, &ours, "installed"));
    };
    if let Some(bundle) = bundle {
        let theirs = &bundle.release_level;
        match HostRelease::of_host(build) {
            HostRelease::Reported(ours) if *theirs != ours => {
                return refuse(checks, &format!("`{theirs}`"), &format!("`{ours}`"));
            }
            HostRelease::Reported(_) => {}
            HostRelease::FromBuild(ours) => {
                if version_triple(theirs).is_none()
                    || version_triple(theirs) != version_triple(build)
                {
                    return refuse(checks, &format!("`{theirs}`"), &format!("`{ours}`"));
                }
                checks.warnings.push(format!(
                    "`vmware -l` is not available here: only the version of release level \
                     `{theirs}` was compared with build {build}, not its update level"
                ));
            }
        }
    }
    let source = &summary.archive;
    match archived_build {
        Some(archived) if archived.is_empty() || archived == build => {}
        Some(archived)
            if version_triple(archived).is_some()
                && version_triple(archived) == version_triple(build) =>
        {
            checks.warnings.push(format!(
                "`{}` was saved on build {archived} of this release; bank `{}` boots build {build}",
                source.display(),
                bank.path.display()
            ));
        }
        Some(archived) => refuse(
            checks,
            &release_of_build(archived),
            &release_of_build(build),
        ),
        None if bundle.is_none() => {
            checks.warnings.push(format!(
                "`{}` records no build; cannot check that it belongs to build {build}",
                source.display()
            ));
        }
        None => {}
    }
}

/// Refuses, unless `force`, an archive with no files (it would boot the host with the image's
/// defaults) or with members no backup of this host would write (outside the scanned and
/// included paths: `pack DIR/etc` names them `hosts`, not `etc/hosts`, and ESXi would extract
/// them into `/`).
fn check_contents(host: &Host, summary: &ArchiveSummary, checks: &mut Checks) -> Result<()> {
    let mut problems = Vec::new();
    if summary.files.is_empty() {
        problems.push(
            "it holds no files; installed, the host boots with the image's defaults".to_string(),
        );
    }
    let rules = host.selection()?;
    let outside = rules.outside(summary.files.iter().map(|f| f.path));
    if let Some(first) = outside.first() {
        problems.push(format!(
            "{} of its members are outside the scanned and included paths (first: `{first}`; \
             was it packed from `DIR/etc` instead of `DIR`?)",
            outside.len()
        ));
    }
    problems
        .into_iter()
        .for_each(|problem| checks.forceable(problem));
    Ok(())
}

fn check_uuid(host: &Host, origin: &str, checks: &mut Checks) {
    let ours = host_uuid(host);
    // A bundle exported from a host with no UUID names none (`UUID=`): nothing to compare.
    if origin.trim().is_empty() || ours.as_deref() == Some(origin) {
        return;
    }
    checks.forceable(format!(
        "it comes from host UUID `{origin}`, this host's is `{}`",
        ours.as_deref().unwrap_or("unknown")
    ));
}
