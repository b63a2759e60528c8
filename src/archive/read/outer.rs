//! The outer layer of `state.tgz`: walks its members and dispatches each by name: the inner
//! `local.tgz` to [`super::inner`], the manifest to its parser, anything else to a warning.
//! Which inner layout an archive has is decided here, by member names.

use std::io::{BufReader, Read};

use super::super::entries::{walk, EntryMeta, WalkError};
use super::super::gzip::GzMembers;
use super::super::manifest::parse_manifest;
use super::super::names::{display_name, is_root_name, normalize_member_name};
use super::super::streams::{describe_io, drain, Budgeted, HashingReader, Tracked};
use super::super::{Problem, INNER_NAME, MANIFEST_NAME};
use super::{EntryKind, ReadState, MAX_MANIFEST};

pub(super) fn read_layers<R: Read>(
    file: R,
    state: &mut ReadState<'_>,
) -> Result<(u64, String), WalkError> {
    let format = |layer: &str, err: std::io::Error| {
        WalkError::Format(format!("{layer}: {}", describe_io(&err)))
    };
    let mut hashed = BufReader::with_capacity(64 << 10, HashingReader::new(file));
    let gz = GzMembers::new(&mut hashed);
    let budget = state.budget.clone();
    let limits = state.limits;
    let mut rest = walk(
        Budgeted::new(gz, budget),
        &limits,
        "state.tgz",
        |meta, data| state.outer_member(meta, data),
    )?;
    let (_, nonzero) = drain(&mut rest).map_err(|e| format("state.tgz", e))?;
    if nonzero {
        state.problems.push(Problem::warning(
            "state.tgz: non-zero data after the end of the tar archive",
        ));
    }
    drop(rest);
    let (trailing, _) = drain(&mut hashed).map_err(|e| format("state.tgz", e))?;
    if trailing > 0 {
        state.problems.push(Problem::warning(format!(
            "state.tgz: {trailing} bytes of trailing data after the gzip stream"
        )));
    }
    let hashing = hashed.into_inner();
    let bytes = hashing.bytes;
    Ok((bytes, hashing.hex_digest()))
}

/// The `./` entry GNU tar writes first for `tar -C dir -czf x .`: skipped in both layers.
pub(super) fn is_top_directory(meta: &EntryMeta) -> bool {
    meta.kind == EntryKind::Directory && is_root_name(&meta.raw_name)
}

impl ReadState<'_> {
    fn outer_member(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if is_top_directory(meta) {
            return Ok(());
        }
        let name = match normalize_member_name(&meta.raw_name) {
            Ok(name) => name,
            Err(reason) => {
                self.problems.push(Problem::error(format!(
                    "unsafe member `{}` in state.tgz: {reason}",
                    display_name(&meta.raw_name)
                )));
                return Ok(());
            }
        };
        match name.as_str() {
            INNER_NAME if meta.kind != EntryKind::File => {
                self.problems.push(Problem::error(format!(
                    "member `{name}` in state.tgz is {}",
                    meta.kind.describe()
                )));
            }
            INNER_NAME if self.inner_seen => {
                self.problems
                    .push(Problem::error("state.tgz holds more than one local.tgz"));
            }
            INNER_NAME => {
                self.inner_seen = true;
                self.read_inner(data)?;
            }
            MANIFEST_NAME => self.read_manifest(meta, data)?,
            "local.tgz.ve" | "encryption.info" => {
                return Err(WalkError::Format(
                    "state.tgz holds an encrypted local.tgz.ve (ESXi 7.0U2+ with a TPM); \
                     statectl cannot read encrypted state"
                        .into(),
                ))
            }
            other => self.problems.push(Problem::warning(format!(
                "unexpected member `{other}` in state.tgz (ignored)"
            ))),
        }
        Ok(())
    }

    /// Streams the manifest, checking each record against the files (see [`super::listed`]);
    /// a second manifest is refused (which of two would a reader believe?).
    fn read_manifest(&mut self, meta: &EntryMeta, data: &mut dyn Read) -> Result<(), WalkError> {
        if std::mem::replace(&mut self.manifest_seen, true) {
            self.problems.push(Problem::error(format!(
                "state.tgz holds more than one {MANIFEST_NAME}"
            )));
            self.manifest = None;
            return Ok(());
        }
        if meta.size > MAX_MANIFEST {
            self.problems.push(Problem::error(format!(
                "manifest {MANIFEST_NAME} is {} bytes, over the {MAX_MANIFEST}-byte limit",
                meta.size
            )));
            return Ok(());
        }
        let mut tracked = Tracked::new(data);
        let mut early_failure = None;
        let parsed = parse_manifest(&mut tracked, &mut |record| {
            if early_failure.is_none() {
                early_failure = self.manifest_record(record).err();
            }
        });
        if let Some(reason) = tracked.failure() {
            return Err(WalkError::Format(format!("state.tgz: {reason}")));
        }
        if let Some(reason) = early_failure {
            return Err(WalkError::Format(reason));
        }
        match parsed {
            Ok(labels) => self.manifest = Some(labels),
            Err(reason) => self.problems.push(Problem::error(format!(
                "manifest {MANIFEST_NAME} cannot be parsed: {reason}"
            ))),
        }
        Ok(())
    }
}
