//! The manifest member `statectl.json`: what the archive holds, for verify and for humans.
//!
//! It records only what the archive itself holds (path, sha256, size, mode, uid, gid, mtime) plus
//! host name and build, so the same files always give the same bytes. Host-local stat fields
//! live in the cache (`detect::cache`), never here.
//!
//! # Reading untrusted manifests
//! [`parse_manifest`] streams: each file record is handed to the caller as it is parsed and
//! never collected, and no JSON string may exceed [`MAX_JSON_STRING`] bytes (checked on the raw
//! bytes, before serde_json buffers the string), so a 40 MiB host name costs 32 KiB, not 40
//! MiB. Decoded fields have their own caps: host and build [`MAX_LABEL`] bytes, a path
//! [`super::names::MAX_PATH`], a sha256 exactly 64 hex digits.

use std::fmt;
use std::io::{self, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Serialize;

use super::names::MAX_PATH;
use crate::records::{AsFileRecords, FileRecord, Records as RecordSource};

/// Current manifest format version.
pub const FORMAT: u32 = 1;
/// Longest raw JSON string (a 4096-byte path written entirely as `\u` escapes is 24 KiB).
pub const MAX_JSON_STRING: usize = 32 << 10;
/// Longest host name or build accepted.
pub const MAX_LABEL: usize = 1024;

/// A whole manifest as one value (tests build and parse them; the writer streams its parts).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub host: String,
    pub build: String,
    pub files: Vec<FileRecord>,
    /// Paths a restore of this archive removes: in an undo archive, the files the restore it
    /// undoes created. Absent (and so byte-identical to older manifests) when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// An undo archive (absent when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo: bool,
}

/// What a reader keeps of a manifest: its labels (the file records are checked as they stream
/// by and then dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLabels {
    pub host: String,
    pub build: String,
    /// An undo archive's `remove` list (at most [`MAX_REMOVE`] paths, each a valid path length).
    pub remove: Vec<String>,
    /// It is an undo archive (`"undo": true`): it restores onto its root whatever identity the
    /// restore it undoes gave that root.
    pub undo: bool,
}

/// Most paths an undo archive's `remove` list may name (the entry limit of an archive).
pub const MAX_REMOVE: usize = 100_000;

#[cfg(test)]
impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_json(&mut bytes).expect("manifest serializes");
        bytes
    }

    /// Writes the manifest's JSON (pretty, newline-terminated) to `out`.
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        write_json(
            out,
            self.format,
            &self.host,
            &self.build,
            &self.files,
            &self.remove,
            self.undo,
        )
    }
}

/// Writes the manifest of the records in `files` (record `i` from `files.record(i)`, made one
/// at a time: a table of 100,000 files is never copied into `FileRecord`s), the same bytes
/// [`Manifest::write_json`] writes for the same records. `undo`: the `remove` list of an undo
/// archive (its manifest then says `"undo": true`).
pub fn write_table_json(
    out: impl std::io::Write,
    host: &str,
    build: &str,
    files: &impl RecordSource,
    undo: Option<&[String]>,
) -> std::io::Result<()> {
    let remove = undo.unwrap_or_default();
    let files = AsFileRecords(files);
    write_json(out, FORMAT, host, build, files, remove, undo.is_some())
}

/// The manifest's JSON, whatever holds its file records.
fn write_json(
    mut out: impl std::io::Write,
    format: u32,
    host: &str,
    build: &str,
    files: impl Serialize,
    remove: &[String],
    undo: bool,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Shape<'a, F> {
        format: u32,
        host: &'a str,
        build: &'a str,
        files: F,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        remove: &'a [String],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        undo: bool,
    }
    let shape = Shape {
        format,
        host,
        build,
        files,
        remove,
        undo,
    };
    serde_json::to_writer_pretty(&mut out, &shape)?;
    out.write_all(b"\n")
}

/// Parses a manifest from `reader`, calling `each` with every file record in order; a record
/// `each` refuses stops the parse with its message.
pub fn parse_manifest(
    reader: impl Read,
    each: &mut dyn FnMut(FileRecord),
) -> Result<ManifestLabels, String> {
    let capped = CappedStrings {
        inner: reader,
        in_string: false,
        escaped: false,
        run: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::new(capped));
    let found = de
        .deserialize_map(ManifestVisitor { each })
        .map_err(|err| err.to_string())?;
    de.end().map_err(|err| err.to_string())?;
    let format = found.format.ok_or("missing field `format`")?;
    if format != FORMAT {
        return Err(format!("unknown manifest format {format}"));
    }
    let (Some(host), Some(build), true) = (found.host, found.build, found.files) else {
        return Err("missing field `host`, `build` or `files`".into());
    };
    Ok(ManifestLabels {
        host,
        build,
        remove: found.remove,
        undo: found.undo,
    })
}

#[derive(Default)]
struct Found {
    format: Option<u32>,
    host: Option<String>,
    build: Option<String>,
    files: bool,
    remove: Vec<String>,
    undo: bool,
}

struct ManifestVisitor<'a> {
    each: &'a mut dyn FnMut(FileRecord),
}

impl<'de> Visitor<'de> for ManifestVisitor<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a statectl manifest object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => found.format = Some(map.next_value()?),
                "host" => found.host = Some(label(&mut map, "host")?),
                "build" => found.build = Some(label(&mut map, "build")?),
                "remove" => found.remove = map.next_value_seed(RemoveList)?,
                "undo" => found.undo = map.next_value()?,
                "files" => {
                    map.next_value_seed(Records { each: self.each })?;
                    found.files = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

fn label<'de, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<String, A::Error> {
    let value: String = map.next_value()?;
    if value.len() > MAX_LABEL {
        return Err(serde::de::Error::custom(format!(
            "field `{name}` is {} bytes, over the {MAX_LABEL}-byte limit",
            value.len()
        )));
    }
    Ok(value)
}

/// The `remove` list, capped in count and path length as it streams in.
struct RemoveList;

impl<'de> DeserializeSeed<'de> for RemoveList {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RemoveList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of paths")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut paths = Vec::new();
        while let Some(path) = seq.next_element::<String>()? {
            if path.len() > MAX_PATH || paths.len() == MAX_REMOVE {
                return Err(serde::de::Error::custom(format!(
                    "field `remove` holds a path over {MAX_PATH} bytes or more than \
                     {MAX_REMOVE} paths"
                )));
            }
            paths.push(path);
        }
        Ok(paths)
    }
}

struct Records<'a> {
    each: &'a mut dyn FnMut(FileRecord),
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of file records")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(record) = seq.next_element::<FileRecord>()? {
            let bad = |what: &str| {
                serde::de::Error::custom(format!("record of `{}`: {what}", record.path))
            };
            if record.path.len() > MAX_PATH {
                return Err(serde::de::Error::custom(format!(
                    "a path of {} bytes, over the {MAX_PATH}-byte limit",
                    record.path.len()
                )));
            }
            if record.sha256.len() != 64 || !record.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("sha256 is not 64 hex digits"));
            }
            (self.each)(record);
        }
        Ok(())
    }
}

/// Passes JSON through, failing once any string (between unescaped quotes) is longer than
/// [`MAX_JSON_STRING`] raw bytes.
struct CappedStrings<R> {
    inner: R,
    in_string: bool,
    escaped: bool,
    run: usize,
}

impl<R: Read> Read for CappedStrings<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        for &byte in &buf[..got] {
            if !self.in_string {
                if byte == b'"' {
                    self.in_string = true;
                    self.run = 0;
                }
                continue;
            }
            self.run += 1;
            if self.run > MAX_JSON_STRING {
                return Err(io::Error::other(format!(
                    "a string of over {MAX_JSON_STRING} bytes"
                )));
            }
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> FileRecord {
        FileRecord {
            path: path.into(),
            sha256: "0".repeat(64),
            size: 1,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 5,
        }
    }

    fn manifest(host: &str, files: Vec<FileRecord>) -> Vec<u8> {
        Manifest {
            format: FORMAT,
            host: host.into(),
            build: "7.0.3".into(),
            files,
            remove: Vec::new(),
            undo: false,
        }
        .to_json()
    }

    #[test]
    fn a_table_of_records_writes_the_same_bytes_as_the_records() {
        let files = vec![record("etc/a"), record("etc/b \"q\"")];
        let table = crate::records::RecordTable::from_records(&files).unwrap();
        let remove = vec!["etc/gone".to_string()];
        let mut bytes = Vec::new();
        write_table_json(&mut bytes, "esx01", "7.0.3", &table, Some(&remove)).unwrap();
        let whole = Manifest {
            format: FORMAT,
            host: "esx01".into(),
            build: "7.0.3".into(),
            files,
            remove,
            undo: true,
        };
        assert_eq!(bytes, whole.to_json());
    }

    #[test]
    fn streams_records_and_keeps_the_labels() {
        let bytes = manifest("esx01", vec![record("etc/a"), record("etc/b \"q\"")]);
        let mut seen = Vec::new();
        let labels = parse_manifest(&bytes[..], &mut |r| seen.push(r.path)).unwrap();
        assert_eq!(labels.host, "esx01");
        assert_eq!(labels.build, "7.0.3");
        assert_eq!(seen, ["etc/a", "etc/b \"q\""]);
    }

    #[test]
    fn a_huge_field_is_an_error_not_an_allocation() {
        let long = "h".repeat(MAX_JSON_STRING + 1);
        let err = parse_manifest(&manifest(&long, vec![])[..], &mut |_| {}).unwrap_err();
        assert!(err.contains("string of over"), "{err}");
        let host = "h".repeat(MAX_LABEL + 1);
        let err = parse_manifest(&manifest(&host, vec![])[..], &mut |_| {}).unwrap_err();
        assert!(err.contains("field `host`"), "{err}");
    }

    #[test]
    fn refuses_other_formats_missing_fields_and_bad_hashes() {
        let mut bad_hash = record("etc/a");
        bad_hash.sha256 = "xyz".into();
        let cases = [
            br#"{"format":2,"host":"","build":"","files":[]}"#.to_vec(),
            br#"{"format":1,"host":"","files":[]}"#.to_vec(),
            br#"{"format":1,"host":"","build":"","files":[]} x"#.to_vec(),
            manifest("h", vec![bad_hash]),
        ];
        for bytes in cases {
            assert!(parse_manifest(&bytes[..], &mut |_| {}).is_err());
        }
    }
}
