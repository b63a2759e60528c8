//! `diff`: unified diffs of the current files against their archived copies.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::archive::{read_archive, InnerEntry, Visitor};
use crate::detect::Detection;
use crate::fs::hostfile::RootReader;
use crate::host::Host;
use crate::ops::status::status_against;
use crate::records::{FileRecord, FileTable, Records};

/// Files larger than this are reported as differing, not diffed.
const MAX_DIFF_BYTES: u64 = 1 << 20;

/// The diffs, one rendered text per changed file, and the archive compared against.
#[derive(Debug)]
pub struct DiffReport {
    pub archive: Option<std::path::PathBuf>,
    pub diffs: Vec<String>,
    /// The comparison's warnings and selection notes, as `status` gives them.
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// Refuses a PATH that names nothing persisted (neither selected now nor in the archive): a
/// diff of it would say "no difference" about a file that is never saved.
fn check_persisted(host: &Host, paths: &[String], detection: &Detection) -> Result<()> {
    for given in paths {
        let p = relative(&host.root, given);
        let under = |path: &str| path == p || path.starts_with(&format!("{p}/"));
        let current = detection.current();
        let persisted = current.indices().any(|i| under(current.path(i)))
            || detection.archived.records().iter().any(|r| under(r.path));
        if !persisted {
            anyhow::bail!(
                "`{given}` is not persisted (not selected on the host, not in the archive); \
                 nothing to diff; see `statectl status` for what is saved"
            );
        }
    }
    Ok(())
}

/// Diffs the pending changes, limited to `paths` (root-relative or absolute under the root;
/// a directory selects everything under it) when any are given.
/// `archive`: compare with that archive (a `state.tgz` or a bundle) instead of the one backup
/// would replace.
pub fn diff(host: &Host, paths: &[String], archive: Option<&Path>) -> Result<DiffReport> {
    let report = status_against(host, archive)?;
    let wanted = |path: &str| {
        paths.is_empty()
            || paths.iter().any(|p| {
                let p = relative(&host.root, p);
                path == p || path.starts_with(&format!("{p}/"))
            })
    };
    let changes = &report.changes;
    let changed: BTreeSet<&str> = changes
        .added
        .iter()
        .chain(changes.modified.iter())
        .chain(changes.removed.iter())
        .filter(|p| wanted(p))
        .collect();
    let old = match &report.archive {
        Some(archive) if !changed.is_empty() && archive.exists() => {
            archived_texts(host, archive, &changed)?
        }
        _ => HashMap::new(),
    };
    let detection = &report.detection;
    let files = detection.current();
    let current: HashMap<&str, (FileRecord, usize)> = files
        .indices()
        .filter(|&i| changed.contains(files.path(i)))
        .map(|i| (files.path(i), (files.record(i).to_record(), i)))
        .collect();
    let reader = RootReader::open(files.root())?;
    let archived: HashMap<&str, FileRecord> = detection
        .archived
        .records()
        .iter()
        .filter(|r| changed.contains(r.path))
        .map(|r| (r.path, r.to_record()))
        .collect();
    check_persisted(host, paths, detection)?;
    let mut diffs = Vec::new();
    for path in changed {
        let before = archived.get(path);
        let after = current.get(path);
        let old_text = old
            .get(path)
            .cloned()
            .unwrap_or(Content::Text(String::new()));
        let new_text = match after {
            Some((record, i)) => current_text(record, files, &reader, *i)?,
            None => Content::Text(String::new()),
        };
        diffs.push(render(
            path,
            before,
            after.map(|a| &a.0),
            &old_text,
            &new_text,
        ));
    }
    Ok(DiffReport {
        archive: report.archive,
        diffs,
        warnings: report.warnings,
        notes: report.notes,
    })
}

fn relative(root: &Path, path: &str) -> String {
    let stripped = Path::new(path)
        .strip_prefix(root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string());
    stripped
        .trim_start_matches("./")
        .trim_matches('/')
        .to_string()
}

#[derive(Debug, Clone)]
enum Content {
    Text(String),
    Binary,
    TooLarge,
}

fn classify(bytes: Vec<u8>) -> Content {
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Content::Text(text),
        _ => Content::Binary,
    }
}

/// The current content of file `i` of `files`, read through the in-root walk: the file the
/// selection saw (else the run stops), never through a link on its own name, and never more
/// than [`MAX_DIFF_BYTES`] of it.
fn current_text(
    record: &FileRecord,
    files: &FileTable,
    reader: &RootReader,
    i: usize,
) -> Result<Content> {
    if record.size > MAX_DIFF_BYTES {
        return Ok(Content::TooLarge);
    }
    let (file, _) = files.open(reader, i)?;
    let mut bytes = Vec::new();
    let read = file.take(MAX_DIFF_BYTES + 1).read_to_end(&mut bytes);
    Ok(match read {
        Ok(_) if bytes.len() as u64 > MAX_DIFF_BYTES => Content::TooLarge,
        Ok(_) => classify(bytes),
        Err(_) => Content::Binary,
    })
}

struct Collect<'a> {
    wanted: &'a BTreeSet<&'a str>,
    texts: HashMap<String, Content>,
}

impl Visitor for Collect<'_> {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let Ok(path) = &entry.path else { return Ok(()) };
        if !self.wanted.contains(path.as_str()) {
            return Ok(());
        }
        let content = if entry.meta.size > MAX_DIFF_BYTES {
            Content::TooLarge
        } else {
            let mut bytes = Vec::with_capacity(entry.meta.size as usize);
            data.read_to_end(&mut bytes)?;
            classify(bytes)
        };
        self.texts.insert(path.clone(), content);
        Ok(())
    }
}

fn archived_texts(
    host: &Host,
    archive: &Path,
    wanted: &BTreeSet<&str>,
) -> Result<HashMap<String, Content>> {
    let mut collect = Collect {
        wanted,
        texts: HashMap::new(),
    };
    match read_archive(archive, &host.limits, &mut collect) {
        Ok(_) => Ok(collect.texts),
        // An unreadable archive: everything counts as added, as in `status`.
        Err(_) => Ok(HashMap::new()),
    }
}

fn render(
    path: &str,
    before: Option<&FileRecord>,
    after: Option<&FileRecord>,
    old: &Content,
    new: &Content,
) -> String {
    let from = if before.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let to = if after.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    let mut out = format!("diff statectl a/{path} b/{path}\n");
    if let (Some(b), Some(a)) = (before, after) {
        for (what, old, new) in [
            ("mode", format!("{:04o}", b.mode), format!("{:04o}", a.mode)),
            ("uid", b.uid.to_string(), a.uid.to_string()),
            ("gid", b.gid.to_string(), a.gid.to_string()),
            ("mtime", b.mtime.to_string(), a.mtime.to_string()),
        ] {
            if old != new {
                out.push_str(&format!("{what} {old} -> {new}\n"));
            }
        }
    }
    match (old, new) {
        (Content::Text(old), Content::Text(new)) if old != new => {
            let text = similar::TextDiff::from_lines(old.as_str(), new.as_str());
            out.push_str(
                &text
                    .unified_diff()
                    .context_radius(3)
                    .header(&from, &to)
                    .to_string(),
            );
        }
        (Content::Text(_), Content::Text(_)) => {}
        (Content::TooLarge, _) | (_, Content::TooLarge) => out.push_str(&format!(
            "Files {from} and {to} differ (too large to show)\n"
        )),
        _ => out.push_str(&format!("Binary files {from} and {to} differ\n")),
    }
    out
}
