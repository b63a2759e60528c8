//! Archive verification as a report: every problem the one reader finds, with a level.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::envelope::{self, probe::probe};
use super::{read_archive, CheckOnly, Level, Limits, Problem};

/// The outcome of verifying one archive (its JSON form is the contract's).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub archive: PathBuf,
    pub ok: bool,
    pub files: usize,
    pub problems: Vec<Problem>,
    /// `"none-mode"` or `"tpm"` for the encrypted layout, null for plain `local.tgz`.
    pub encrypted: Option<&'static str>,
}

/// Reads `path` completely and collects what is wrong with it; never fails: a fatal read error
/// is one error-level problem.
pub fn verify_archive(path: &Path, limits: &Limits) -> VerifyReport {
    let (files, problems, encrypted) = match read_archive(path, limits, &mut CheckOnly) {
        Ok(summary) => (
            summary.files.len(),
            summary.problems,
            envelope::label(summary.encryption.as_ref()),
        ),
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
    }
}
