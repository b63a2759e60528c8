//! `FileRecord`: what an archive holds of one file, the unit every comparison works on.

use serde::{Deserialize, Serialize};

/// A persisted file as the archive records it: root-relative path, content hash and the
/// metadata that is restored (all 12 mode bits, numeric owner, mtime in seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    #[serde(with = "octal_mode")]
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

impl FileRecord {
    /// True when content and restored metadata are the same (the path is not compared).
    pub fn same_state(&self, other: &FileRecord) -> bool {
        self.sha256 == other.sha256
            && self.size == other.size
            && self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mtime == other.mtime
    }
}

/// Formats a mode as the four octal digits of the contract, e.g. `1644`.
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// Serializes a mode as four octal digits, e.g. `"1644"`.
pub mod octal_mode {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::mode_string(*mode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        let text = String::deserialize(deserializer)?;
        u32::from_str_radix(&text, 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .ok_or_else(|| serde::de::Error::custom(format!("bad mode `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_round_trips_as_octal_text() {
        let record = FileRecord {
            path: "etc/hosts".into(),
            sha256: "00".into(),
            size: 1,
            mode: 0o1644,
            uid: 0,
            gid: 0,
            mtime: 5,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"mode\":\"1644\""), "{json}");
        let back: FileRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }
}
