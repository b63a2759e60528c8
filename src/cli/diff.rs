//! `statectl diff`: unified diffs of pending changes.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Output, Report};
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::diff::diff;

/// Show unified diffs of the current files against their archived copies
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Prints a unified diff (archive = a/, host = b/) of every pending change, \
or of the named PATHs only, against the archive backup would replace (or the --archive named: a \
state.tgz or a configBundle-*.tgz); mode, owner and mtime changes \
are listed above each diff. Changes nothing. Exit 0 when nothing differs, 3 when something does; \
a PATH that names nothing persisted (not selected, not archived) is an error (exit 1).",
    after_help = "Examples:\n  statectl diff\n  statectl diff etc/hosts etc/vmware\n  \
statectl diff --archive configBundle-esx01-20250101T120000Z.tgz etc/hosts"
)]
pub struct DiffArgs {
    /// Files or directories to diff (root-relative like etc/hosts, or absolute under --root)
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Diff against this archive (a state.tgz or configBundle-*.tgz) instead of the one backup would replace
    #[arg(long, value_name = "ARCHIVE")]
    pub archive: Option<std::path::PathBuf>,
}

/// The `--json` document: an object, so that it carries `warnings` as every report does.
#[derive(Serialize)]
struct DiffJson<'a> {
    archive: Option<&'a std::path::Path>,
    diffs: &'a [String],
}

impl Report for DiffJson<'_> {}

pub fn run(host: &Host, out: &Output, args: &DiffArgs) -> Result<ExitCode> {
    let report = diff(host, &args.paths, args.archive.as_deref())?;
    out.warn_all(&report.warnings);
    report.notes.iter().for_each(|note| out.note(note));
    if out.json {
        out.json(&DiffJson {
            archive: report.archive.as_deref(),
            diffs: &report.diffs,
        })?;
    } else {
        for text in &report.diffs {
            out.text(text);
        }
    }
    Ok(if report.diffs.is_empty() {
        Exit::Success
    } else {
        Exit::Pending
    }
    .into())
}
