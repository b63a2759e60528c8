//! ESXi configuration bundles (`configBundle-*.tgz`): a gzip'd tar holding `Manifest.txt` and
//! `state.tgz`, the layout `firmwareConfig.sh --backup` writes and `--restore` reads.
//!
//! # Security
//! A bundle is untrusted like any archive: its outer layer is walked with the same [`Limits`]
//! (entry count, header size, shared expansion budget), every gzip member of it ([`GzMembers`],
//! as the archive reader) and drained so the gzip CRC is checked; the `./` entry tar writes for
//! `tar -C dir -czf x .` is skipped; member names go through [`normalize_member_name`] and any
//! unsafe name, non-file member or duplicate refuses the bundle (names are remembered only as
//! keyed hashes, so 100,000 long names cost no more than short ones). Its `state.tgz` is copied into a 0600 temp file and then read
//! by the one archive reader like any other `state.tgz`; its names are never used as paths.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use tempfile::NamedTempFile;

use super::entries::{walk, EntryKind, EntryMeta, WalkError};
use super::gzip::GzMembers;
use super::names::{display_name, is_root_name, normalize_member_name};
use super::streams::{describe_io, drain, Budget, Budgeted, HashingReader};
use super::{
    open_archive, read_archive_stream, ArchiveSummary, Limits, Visitor, INNER_NAME, STATE_NAME,
};
use crate::error::Error;

/// Name of the bundle's manifest member.
pub const BUNDLE_MANIFEST: &str = "Manifest.txt";
/// Largest `Manifest.txt` accepted.
const MAX_MANIFEST: u64 = 64 << 10;

/// The lines of `Manifest.txt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleManifest {
    pub release_level: String,
    pub uuid: String,
    pub kernelopts: String,
    pub useropts: String,
}

impl BundleManifest {
    /// Reads the `KEY=value` lines as `firmwareConfig.sh --restore` does: the value is the
    /// rest of the line after `KEY=`, untrimmed (its release check is a string comparison);
    /// unknown keys are ignored and a later duplicate wins.
    pub fn parse(text: &str) -> BundleManifest {
        let mut manifest = BundleManifest::default();
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let slot = match key {
                "RELEASELEVEL" => &mut manifest.release_level,
                "UUID" => &mut manifest.uuid,
                "KERNELOPTS" => &mut manifest.kernelopts,
                "USEROPTS" => &mut manifest.useropts,
                _ => continue,
            };
            *slot = value.to_string();
        }
        manifest
    }

    /// The text as `firmwareConfig.sh --backup` writes it: four `KEY=value` lines, in its order.
    pub fn text(&self) -> String {
        format!(
            "RELEASELEVEL={}\nUUID={}\nKERNELOPTS={}\nUSEROPTS={}\n",
            self.release_level, self.uuid, self.kernelopts, self.useropts
        )
    }
}

/// What `install` was given.
pub enum Input {
    /// A bare `state.tgz` (its outer layer holds `local.tgz`).
    State,
    /// A configuration bundle, its `state.tgz` copied into a 0600 temp file.
    Bundle {
        manifest: BundleManifest,
        state: NamedTempFile,
    },
}

/// Looks at the outer layer of `path` and tells a `state.tgz` from a bundle; a bundle's
/// `state.tgz` is copied into a temp file in `scratch`.
pub fn open_input(path: &Path, limits: &Limits, scratch: &Path) -> Result<Input> {
    let mut outer = Outer::new(Sink::Spool(scratch));
    walk_outer(
        open_archive(path)?,
        path,
        limits,
        &mut outer,
        "nothing was installed",
    )?;
    let bad = |reason: String| Error::BadArchive {
        archive: path.to_path_buf(),
        reason,
    };
    match (outer.has_inner, outer.manifest, outer.state) {
        (true, None, None) => Ok(Input::State),
        (false, Some(manifest), Some(state)) => Ok(Input::Bundle { manifest, state }),
        (false, None, Some(_)) => Err(bad(format!(
            "invalid bundle: it holds {STATE_NAME} but no {BUNDLE_MANIFEST} (firmwareConfig.sh \
             refuses it too: \"Invalid Bundle: Missing Manifest File\"); nothing was installed"
        ))
        .into()),
        _ => Err(bad(format!(
            "it is neither a state.tgz (holding {INNER_NAME}) nor a configBundle \
             (holding {BUNDLE_MANIFEST} and {STATE_NAME})"
        ))
        .into()),
    }
}

/// A bundle read to its end by [`read_bundle`].
pub struct BundleRead {
    /// The complete read of its `state.tgz` by the one archive reader.
    pub state: ArchiveSummary,
    /// Size and sha256 of the bundle file itself.
    pub bytes: u64,
    pub sha256: String,
}

/// Reads the bundle at `path` completely, streaming: the outer layer as [`open_input`] checks
/// it, its `state.tgz` member by the one archive reader with `visitor` (no temp file), the
/// bundle file hashed on the way. A bare `state.tgz`, a bundle without `state.tgz` or with an
/// error-level problem in it is refused, naming `path`.
pub fn read_bundle(path: &Path, limits: &Limits, visitor: &mut dyn Visitor) -> Result<BundleRead> {
    let mut summary = None;
    let mut outer = Outer::new(Sink::Read {
        path,
        limits,
        visitor,
        summary: &mut summary,
    });
    let mut file = HashingReader::new(open_archive(path)?);
    walk_outer(&mut file, path, limits, &mut outer, "it was left out")?;
    let has_inner = outer.has_inner;
    drop(outer);
    let state = match summary {
        Some(state) if !has_inner => state,
        _ => {
            return Err(Error::BadArchive {
                archive: path.to_path_buf(),
                reason: format!("it is not a configBundle (holding {STATE_NAME})"),
            }
            .into())
        }
    };
    state.ensure_clean("it was left out")?;
    // What the gzip reader left unread (nothing in a well-formed file) still counts in the hash.
    std::io::copy(&mut file, &mut std::io::sink())
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let bytes = file.bytes;
    Ok(BundleRead {
        state,
        bytes,
        sha256: file.hex_digest(),
    })
}

/// Walks the outer layer of the bundle open as `file` into `outer`, drained to its end; the
/// first problem refuses it (`outcome` says what did not happen).
fn walk_outer(
    file: impl Read,
    path: &Path,
    limits: &Limits,
    outer: &mut Outer,
    outcome: &str,
) -> Result<()> {
    let gz = GzMembers::new(BufReader::with_capacity(64 << 10, file));
    let walked = walk(
        Budgeted::new(gz, Budget::new(limits.max_expanded)),
        limits,
        "bundle",
        |meta, data| outer.member(meta, data),
    )
    .and_then(|mut rest| {
        drain(&mut rest)
            .map(|_| ())
            .map_err(|e| WalkError::Format(format!("bundle: {}", describe_io(&e))))
    });
    match walked {
        Ok(()) => {}
        Err(WalkError::Format(reason)) => {
            return Err(Error::BadArchive {
                archive: path.to_path_buf(),
                reason,
            }
            .into())
        }
        Err(WalkError::Visitor(err)) => return Err(err),
    }
    match outer.problems.first() {
        Some(problem) => Err(Error::UnsafeArchive {
            archive: path.to_path_buf(),
            reason: format!("{problem}; {outcome}"),
        }
        .into()),
        None => Ok(()),
    }
}

/// Where the bundle's `state.tgz` member goes.
enum Sink<'a> {
    /// Copied into a 0600 temp file in this directory.
    Spool(&'a Path),
    /// Read in place by the archive reader; its summary is left in `summary`.
    Read {
        path: &'a Path,
        limits: &'a Limits,
        visitor: &'a mut dyn Visitor,
        summary: &'a mut Option<ArchiveSummary>,
    },
}

struct Outer<'a> {
    sink: Sink<'a>,
    keys: RandomState,
    seen: HashSet<u64>,
    problems: Vec<String>,
    manifest: Option<BundleManifest>,
    state: Option<NamedTempFile>,
    has_inner: bool,
}

impl<'a> Outer<'a> {
    fn new(sink: Sink<'a>) -> Outer<'a> {
        Outer {
            sink,
            keys: RandomState::new(),
            seen: HashSet::new(),
            problems: Vec::new(),
            manifest: None,
            state: None,
            has_inner: false,
        }
    }

    fn member(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if meta.kind == EntryKind::Directory && is_root_name(&meta.raw_name) {
            return Ok(());
        }
        if !self.problems.is_empty() {
            return Ok(()); // only the first problem is reported
        }
        let name = match normalize_member_name(&meta.raw_name) {
            Ok(name) => name,
            Err(reason) => {
                let shown = display_name(&meta.raw_name);
                self.problems
                    .push(format!("unsafe member `{shown}`: {reason}"));
                return Ok(());
            }
        };
        if meta.kind != EntryKind::File {
            self.problems
                .push(format!("member `{name}` is {}", meta.kind.describe()));
            return Ok(());
        }
        if !self.seen.insert(self.keys.hash_one(&name)) {
            self.problems.push(format!("duplicate member `{name}`"));
            return Ok(());
        }
        let io = |err: std::io::Error| WalkError::Format(format!("bundle: {}", describe_io(&err)));
        match name.as_str() {
            INNER_NAME => self.has_inner = true,
            BUNDLE_MANIFEST if meta.size > MAX_MANIFEST => self
                .problems
                .push(format!("{BUNDLE_MANIFEST} is over {MAX_MANIFEST} bytes")),
            BUNDLE_MANIFEST => {
                let mut text = String::new();
                data.read_to_string(&mut text).map_err(io)?;
                self.manifest = Some(BundleManifest::parse(&text));
            }
            STATE_NAME => match &mut self.sink {
                Sink::Spool(scratch) => {
                    let mut temp = crate::fs::atomic::temp_in(scratch)?;
                    std::io::copy(data, temp.as_file_mut()).map_err(io)?;
                    self.state = Some(temp);
                }
                Sink::Read {
                    path,
                    limits,
                    visitor,
                    summary,
                } => {
                    let read = read_archive_stream(data, path, limits, &mut **visitor)?;
                    **summary = Some(read);
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// Writes a bundle of `manifest` and the `state.tgz` open as `source` (read from its start;
/// `state` names it in messages) to `out`: members 0600, owned by 0:0, dated `mtime`.
pub fn write_bundle<W: Write>(
    out: W,
    manifest: &BundleManifest,
    source: &mut std::fs::File,
    state: &Path,
    mtime: u64,
) -> Result<()> {
    let text = manifest.text();
    write_bundle_text(out, (text.as_bytes(), mtime), source, state, mtime)
}

/// As [`write_bundle`], with `Manifest.txt` given byte for byte with its mtime (a rewrite of
/// a bundle keeps both).
pub fn write_bundle_text<W: Write>(
    out: W,
    (text, text_mtime): (&[u8], u64),
    source: &mut std::fs::File,
    state: &Path,
    mtime: u64,
) -> Result<()> {
    use std::io::Seek;
    source
        .rewind()
        .with_context(|| format!("cannot rewind `{}`", state.display()))?;
    let size = source
        .metadata()
        .with_context(|| format!("cannot stat `{}`", state.display()))?
        .len();
    let gz = GzBuilder::new().mtime(0).write(out, Compression::new(1));
    let mut builder = tar::Builder::new(gz);
    builder.append_data(
        &mut header(text.len() as u64, text_mtime),
        BUNDLE_MANIFEST,
        text,
    )?;
    builder
        .append_data(&mut header(size, mtime), STATE_NAME, source)
        .with_context(|| format!("cannot copy `{}` into the bundle", state.display()))?;
    builder.into_inner()?.finish()?.flush()?;
    Ok(())
}

fn header(size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_text_round_trips() {
        let manifest = BundleManifest {
            release_level: "VMware ESXi 6.7.0 Update 3".into(),
            uuid: "5f1c-01".into(),
            kernelopts: "autoPartition=FALSE".into(),
            useropts: "vmkLinuxHost=1 noIOMMU".into(),
        };
        assert_eq!(BundleManifest::parse(&manifest.text()), manifest);
        let script = "RELEASELEVEL=VMware ESXi 6.7.0 Update 3 \r\nUSEROPTS=a=b\n";
        let parsed = BundleManifest::parse(script);
        assert_eq!(parsed.release_level, "VMware ESXi 6.7.0 Update 3 ");
        assert_eq!(parsed.useropts, "a=b");
    }
}
