//! Archive verification as a report: every problem the one reader finds, with a level.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::bundle::BundleManifest;
use super::envelope::{self, probe::probe};
use super::{read_archive, CheckOnly, Level, Limits, Problem};
use crate::config::Selection;

/// The outcome of verifying one archive (its JSON form is the contract's).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub archive: PathBuf,
    pub ok: bool,
    pub files: usize,
    pub problems: Vec<Problem>,
    /// `"none-mode"` or `"tpm"` for the encrypted layout, null for plain `local.tgz`.
    pub encrypted: Option<&'static str>,
    /// The bundle's `Manifest.txt` fields; null for a plain `state.tgz`.
    pub bundle: Option<BundleFields>,
}

/// A bundle's `Manifest.txt` as `verify --json` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BundleFields {
    pub releaselevel: String,
    pub uuid: String,
    pub kerneloptions: String,
    pub useropts: String,
}

impl BundleFields {
    pub fn of(manifest: &BundleManifest) -> BundleFields {
        BundleFields {
            releaselevel: manifest.release_level.clone(),
            uuid: manifest.uuid.clone(),
            kerneloptions: manifest.kernelopts.clone(),
            useropts: manifest.useropts.clone(),
        }
    }
}

/// Reads `path` completely and collects what is wrong with it; never fails: a fatal read error
/// is one error-level problem.
pub fn verify_archive(path: &Path, limits: &Limits) -> VerifyReport {
    verify_against(path, limits, None)
}

/// As [`verify_archive`], and with `rules` each member no backup by those rules would write
/// (outside the scanned and included paths, as `pack DIR/etc` makes) is a warning.
pub fn verify_against(path: &Path, limits: &Limits, rules: Option<&Selection>) -> VerifyReport {
    let mut bundle = None;
    let (files, problems, encrypted) = match read_archive(path, limits, &mut CheckOnly) {
        Ok(summary) => {
            let mut problems = summary.problems;
            let paths = summary.files.iter().map(|f| f.path);
            for member in rules.map(|r| r.outside(paths)).unwrap_or_default() {
                problems.push(Problem::warning(format!(
                    "member `{member}` is outside the scanned and included paths (was the \
                     archive packed from `DIR/etc` instead of `DIR`?); ESXi would extract it \
                     to `/{member}`"
                )));
            }
            let encrypted = envelope::label(summary.encryption.as_ref());
            bundle = summary.bundle.map(|b| BundleFields::of(&b.manifest));
            (summary.files.len(), problems, encrypted)
        }
        Err(err) => (
            0,
            vec![Problem::error(format!("{err:#}"))],
            probe(path, limits).label(),
        ),
    };
    VerifyReport {
        archive: path.to_path_buf(),
        ok: !problems.iter().any(|p| p.level == Level::Error),
        files,
        problems,
        encrypted,
        bundle,
    }
}
