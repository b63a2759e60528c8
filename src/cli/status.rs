//! `statectl status`: what a backup would save now.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Output, Report};
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::status::status;
use crate::records::{FileTable, PathList};

/// List files added, modified or removed since the archive backup would replace
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Compares the persisted files with the archive backup would replace (the \
bootbank's; the next-boot bank's when it is a staged upgrade backup also writes; never a \
rollback target's) and lists what a backup would save: added, modified (content, mode, owner or mtime) and \
removed files, plus branched files (a .# sibling exists; informational). Changes nothing on the \
bank. Exit 0 when in sync, 3 when changes are pending.",
    after_help = "Examples:\n  statectl status\n  statectl status --json | jq .modified"
)]
pub struct StatusArgs {}

#[derive(Serialize)]
struct StatusJson<'a> {
    archive: Option<&'a std::path::Path>,
    encrypted: Option<&'static str>,
    added: &'a PathList,
    modified: &'a PathList,
    removed: &'a PathList,
    branched: Branched<'a>,
}

impl Report for StatusJson<'_> {}

/// The branched files of a selection, serialized as an array of paths (never collected).
struct Branched<'a>(&'a FileTable);

impl Serialize for Branched<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.branched_paths())
    }
}

pub fn run(host: &Host, out: &Output, _args: &StatusArgs) -> Result<ExitCode> {
    let report = status(host)?;
    out.warn_all(&report.warnings);
    report.notes.iter().for_each(|note| out.note(note));
    let changes = &report.changes;
    if out.json {
        out.json(&StatusJson {
            archive: report.archive.as_deref(),
            encrypted: report.encrypted,
            added: &changes.added,
            modified: &changes.modified,
            removed: &changes.removed,
            branched: Branched(report.detection.current()),
        })?;
    } else {
        print_paths(
            out,
            true,
            &changes.added,
            &changes.modified,
            &changes.removed,
        );
        if out.verbose > 0 {
            for path in report.detection.current().branched_paths() {
                out.line_or_detail(false, &format!("branched  {path}"));
            }
        }
        if changes.is_empty() && !out.quiet {
            let next = if report.boots_next {
                " (the archive the next boot loads)"
            } else {
                ""
            };
            match &report.archive {
                Some(archive) => out.line(&format!("in sync with {}{next}", archive.display())),
                None => out.line(
                    "nothing to save: no file is selected and no boot bank is eligible (not an \
                     ESXi root? see --root and `statectl bank status`)",
                ),
            }
        }
    }
    Ok(if changes.is_empty() {
        Exit::Success
    } else {
        Exit::Pending
    }
    .into())
}

/// Prints change lists, one `kind  path` line each.
/// The changed paths, one a line, on stdout (`on_stdout`) or as `-v` detail on stderr.
pub fn print_paths(
    out: &Output,
    on_stdout: bool,
    added: &PathList,
    modified: &PathList,
    removed: &PathList,
) {
    for (kind, paths) in [
        ("added", added),
        ("modified", modified),
        ("removed", removed),
    ] {
        for path in paths {
            out.line_or_detail(on_stdout, &format!("{kind:<9} {path}"));
        }
    }
}
