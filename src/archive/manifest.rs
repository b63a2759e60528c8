//! The manifest member `statectl.json`: what the archive holds, for verify and for humans.
//!
//! It records only what the archive itself holds (path, sha256, size, mode, uid, gid, mtime) plus
//! host name and build, so the same files always give the same bytes. Host-local stat fields
//! live in the cache (`detect::cache`), never here.

use serde::{Deserialize, Serialize};

use super::FileRecord;

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
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
        if manifest.format != FORMAT {
            return Err(format!("unknown manifest format {}", manifest.format));
        }
        Ok(manifest)
    }
}
