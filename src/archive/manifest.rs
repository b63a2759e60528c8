//! The manifest member `statectl.json`: what the archive holds, for verify and for humans.
//!
//! It records only what the archive itself holds (path, sha256, size, mode, uid, gid, mtime) plus
//! host name and build, so the same files always give the same bytes. Host-local stat fields
//! live in the cache (`detect::cache`), never here.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{FileRecord, Problem, INNER_NAME};

/// Current manifest format version.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub host: String,
    pub build: String,
    pub files: Vec<FileRecord>,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_json(&mut bytes).expect("manifest serializes");
        bytes
    }

    /// Writes the bytes of [`Manifest::to_json`] to `out`, streaming (no copy in memory).
    pub fn write_json(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
        if manifest.format != FORMAT {
            return Err(format!("unknown manifest format {}", manifest.format));
        }
        Ok(manifest)
    }
}

/// Problems between a manifest and the content actually found.
pub fn compare_manifest(manifest: &Manifest, files: &[FileRecord]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let listed: BTreeMap<&str, &FileRecord> = manifest
        .files
        .iter()
        .map(|r| (r.path.as_str(), r))
        .collect();
    let found: HashSet<&str> = files.iter().map(|r| r.path.as_str()).collect();
    for record in files {
        match listed.get(record.path.as_str()) {
            None => problems.push(Problem::error(format!(
                "`{}` is in {INNER_NAME} but not in the manifest",
                record.path
            ))),
            Some(expected) if expected.sha256 != record.sha256 || expected.size != record.size => {
                problems.push(Problem::error(format!(
                    "`{}`: content does not match the manifest (sha256 {} size {}, manifest says {} size {})",
                    record.path, record.sha256, record.size, expected.sha256, expected.size
                )))
            }
            Some(expected) if !expected.same_state(record) => problems.push(Problem::error(format!(
                "`{}`: mode, owner or mtime does not match the manifest",
                record.path
            ))),
            Some(_) => {}
        }
    }
    for path in listed.keys().filter(|p| !found.contains(*p)) {
        problems.push(Problem::error(format!(
            "`{path}` is in the manifest but not in {INNER_NAME}"
        )));
    }
    problems
}
