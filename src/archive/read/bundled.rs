//! Bundles read as archives: a `configBundle-*.tgz` (`Manifest.txt` + `state.tgz`, as
//! `firmwareConfig.sh --backup` and `statectl export` write it) is recognised by its member
//! names in the outer walk, and its `state.tgz` member is read in the same pass, streaming, by
//! the same outer and inner code as a bare `state.tgz`: every reader takes bundles without a
//! temp file or a second opener. Only one level is followed (a `state.tgz` inside the bundle's
//! `state.tgz` is an unexpected member), and the bundle's own layer shares the read's expansion
//! budget and limits.

use std::cell::Cell;
use std::io::{BufReader, Read};

use super::super::bundle::{BundleManifest, BUNDLE_MANIFEST};
use super::super::entries::{walk, EntryMeta, WalkError};
use super::super::gzip::GzMembers;
use super::super::streams::{describe_io, drain, Budgeted};
use super::super::{Problem, INNER_NAME, STATE_NAME};
use super::{EntryKind, ReadState};

/// Largest `Manifest.txt` accepted (ESXi's is four short lines).
const MAX_BUNDLE_MANIFEST: u64 = 64 << 10;

/// The bundle a read met: its `Manifest.txt` as parsed and byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleInfo {
    pub manifest: BundleManifest,
    /// The member's exact bytes (a rewrite of the bundle keeps them).
    pub text: Vec<u8>,
    /// The member's mtime.
    pub mtime: u64,
}

/// What the outer walk saw of a bundle layer.
#[derive(Default)]
pub(super) struct BundleParts {
    /// Reading the bundle's `state.tgz` now.
    nested: bool,
    state_seen: bool,
    manifest_seen: bool,
    pub(super) info: Option<BundleInfo>,
}

impl ReadState<'_> {
    /// Whether `name` at this level is a bundle's member (only the top level is a bundle).
    pub(super) fn is_bundle_member(&self, name: &str) -> bool {
        !self.bundle.nested && (name == BUNDLE_MANIFEST || name == STATE_NAME)
    }

    /// Takes a top-level `Manifest.txt` or `state.tgz`.
    pub(super) fn bundle_member(
        &mut self,
        name: &str,
        meta: &EntryMeta,
        data: &mut dyn Read,
        consumed: &Cell<u64>,
    ) -> Result<(), WalkError> {
        if meta.kind != EntryKind::File {
            self.problems.push(Problem::error(format!(
                "member `{name}` of the bundle is {}",
                meta.kind.describe()
            )));
            return Ok(());
        }
        let twice = |seen: &mut bool| std::mem::replace(seen, true);
        if name == BUNDLE_MANIFEST {
            if twice(&mut self.bundle.manifest_seen) {
                return Err(format_error(format!(
                    "the bundle holds more than one {BUNDLE_MANIFEST}"
                )));
            }
            return self.bundle_manifest(meta, data);
        }
        if twice(&mut self.bundle.state_seen) {
            return Err(format_error(format!(
                "the bundle holds more than one {STATE_NAME}"
            )));
        }
        if self.inner_seen {
            return Err(format_error(format!(
                "it holds both {INNER_NAME} and {STATE_NAME} (neither a state.tgz nor a bundle)"
            )));
        }
        self.bundle.nested = true;
        let read = self.read_bundled_state(data, consumed);
        self.bundle.nested = false;
        read
    }

    fn bundle_manifest(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if meta.size > MAX_BUNDLE_MANIFEST {
            return Err(format_error(format!(
                "{BUNDLE_MANIFEST} is {} bytes, over the {MAX_BUNDLE_MANIFEST}-byte limit",
                meta.size
            )));
        }
        let mut text = Vec::with_capacity(meta.size as usize);
        data.read_to_end(&mut text)
            .map_err(|err| format_error(format!("{BUNDLE_MANIFEST}: {}", describe_io(&err))))?;
        self.bundle.info = Some(BundleInfo {
            manifest: BundleManifest::parse(&String::from_utf8_lossy(&text)),
            text,
            mtime: meta.mtime.max(0) as u64,
        });
        Ok(())
    }

    /// Walks the bundle's `state.tgz` with the outer reader, as if it were the archive.
    /// `consumed` counts the bytes read of the file the bundle is (the envelope spool's bound).
    fn read_bundled_state(
        &mut self,
        data: &mut dyn Read,
        consumed: &Cell<u64>,
    ) -> Result<(), WalkError> {
        let format = |err: std::io::Error| {
            format_error(format!("{STATE_NAME} in the bundle: {}", describe_io(&err)))
        };
        let mut buffered = BufReader::with_capacity(64 << 10, data);
        let gz = GzMembers::new(&mut buffered);
        let limits = self.limits;
        let mut rest = walk(
            Budgeted::new(gz, self.budget.clone()),
            &limits,
            STATE_NAME,
            |meta, content| self.outer_member(meta, content, consumed),
        )?;
        let (_, nonzero) = drain(&mut rest).map_err(format)?;
        drop(rest);
        let (trailing, _) = drain(&mut buffered).map_err(format)?;
        if nonzero || trailing > 0 {
            self.problems.push(Problem::warning(format!(
                "{STATE_NAME} in the bundle: data after the end of its archive"
            )));
        }
        Ok(())
    }

    /// After the whole archive: a bundle missing one of its two members.
    pub(super) fn finish_bundle(&mut self) {
        match (self.bundle.state_seen, self.bundle.manifest_seen) {
            (true, false) => self.problems.push(Problem::warning(format!(
                "the bundle holds {STATE_NAME} but no {BUNDLE_MANIFEST} (install and ESXi's \
                 firmwareConfig.sh --restore refuse it: \"Invalid Bundle\")"
            ))),
            (false, true) if !self.inner_seen => self.problems.push(Problem::error(format!(
                "the bundle holds {BUNDLE_MANIFEST} but no {STATE_NAME}"
            ))),
            (false, true) => self.problems.push(Problem::warning(format!(
                "unexpected member `{BUNDLE_MANIFEST}` in state.tgz (ignored)"
            ))),
            _ => {}
        }
    }

    /// The read was of a bundle (its `state.tgz` was met at the top level).
    pub(super) fn is_bundle(&self) -> bool {
        self.bundle.state_seen
    }
}

fn format_error(reason: String) -> WalkError {
    WalkError::Format(reason)
}
