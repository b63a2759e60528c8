//! The outer layer of `state.tgz`: walks its members and dispatches each by name: the inner
//! `local.tgz` to [`super::inner`], the manifest to its parser, anything else to a warning.
//! Which inner layout an archive has is decided here, by member names: `local.tgz`, or
//! `local.tgz.ve` + `encryption.info` (ESXi 7.0 U2+; the key store may be `.#encryption.info`
//! instead, never both), in either order. The envelope is spooled
//! to a private temp file while the outer walk goes on, and opened (authenticated, then
//! decrypted into the same inner reader) once the outer layer has been read to its end.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::rc::Rc;

use super::super::entries::{walk, EntryMeta, Tracked, WalkError};
use super::super::envelope::{
    self, keystore, Encryption, Mode, ENVELOPE_NAME, KEYSTORE_BRANCH_NAME, KEYSTORE_NAME,
};
use super::super::gzip::GzMembers;
use super::super::manifest::parse_manifest;
use super::super::names::{display_name, is_root_name, normalize_member_name};
use super::super::streams::{describe_io, drain, Budgeted, HashingReader};
use super::super::{Problem, INNER_NAME, MANIFEST_NAME};
use super::{EntryKind, ReadState, MAX_MANIFEST};

pub(super) fn read_layers<R: Read>(
    file: R,
    state: &mut ReadState<'_>,
) -> Result<(u64, String), WalkError> {
    let format = |layer: &str, err: std::io::Error| {
        WalkError::Format(format!("{layer}: {}", describe_io(&err)))
    };
    let consumed = Rc::new(Cell::new(0));
    let counted = Consumed {
        inner: file,
        count: Rc::clone(&consumed),
    };
    let mut hashed = BufReader::with_capacity(64 << 10, HashingReader::new(counted));
    let gz = GzMembers::new(&mut hashed);
    let budget = state.budget.clone();
    let limits = state.limits;
    let mut rest = walk(
        Budgeted::new(gz, budget),
        &limits,
        "state.tgz",
        |meta, data| state.outer_member(meta, data, &consumed),
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
    let digest = hashing.hex_digest();
    state.read_sealed()?;
    Ok((bytes, digest))
}

/// The members of the encrypted layout, as the outer walk meets them.
#[derive(Default)]
pub(super) struct SealedParts {
    /// The spooled `local.tgz.ve` and its length.
    envelope: Option<(File, u64)>,
    /// The key store and the name it came under.
    keystore: Option<(Vec<u8>, &'static str)>,
    /// Set once the envelope was opened.
    pub(super) encryption: Option<Encryption>,
}

/// The `./` entry GNU tar writes first for `tar -C dir -czf x .`: skipped in both layers.
pub(super) fn is_top_directory(meta: &EntryMeta) -> bool {
    meta.kind == EntryKind::Directory && is_root_name(&meta.raw_name)
}

/// Counts the archive's own bytes read so far (the bound of the envelope's spool).
struct Consumed<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Consumed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.count.set(self.count.get() + got as u64);
        Ok(got)
    }
}

/// How far the spooled envelope may run ahead of the archive bytes read: ciphertext does not
/// compress, so a real envelope spools about what the archive holds; more is a gzip bomb.
const SPOOL_SLACK: u64 = 64 << 20;

impl ReadState<'_> {
    pub(super) fn outer_member(
        &mut self,
        meta: &EntryMeta,
        data: &mut dyn Read,
        consumed: &Cell<u64>,
    ) -> Result<(), WalkError> {
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
            bundled if self.is_bundle_member(bundled) => {
                self.bundle_member(bundled, meta, data, consumed)?
            }
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
            ENVELOPE_NAME | KEYSTORE_NAME | KEYSTORE_BRANCH_NAME
                if meta.kind != EntryKind::File =>
            {
                self.problems.push(Problem::error(format!(
                    "member `{name}` in state.tgz is {}",
                    meta.kind.describe()
                )));
            }
            ENVELOPE_NAME => self.spool_envelope(data, consumed)?,
            KEYSTORE_NAME => self.read_keystore(KEYSTORE_NAME, meta, data)?,
            KEYSTORE_BRANCH_NAME => self.read_keystore(KEYSTORE_BRANCH_NAME, meta, data)?,
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
        if !self.check_content {
            return Ok(()); // a second read: the walk skips it (still hashed with the archive)
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

impl ReadState<'_> {
    /// Spools the envelope to a private temp file, never more than the archive bytes read so
    /// far (`consumed`) plus [`SPOOL_SLACK`]: on ESXi the temp space is RAM.
    fn spool_envelope(
        &mut self,
        data: &mut dyn Read,
        consumed: &Cell<u64>,
    ) -> Result<(), WalkError> {
        if self.sealed.envelope.is_some() {
            return Err(twice(ENVELOPE_NAME));
        }
        let fail = |err: std::io::Error| {
            WalkError::Format(format!("{ENVELOPE_NAME}: {}", describe_io(&err)))
        };
        // Unnamed (O_TMPFILE), 0600: the ciphertext never has a name another process could open.
        let mut spool = tempfile::tempfile().map_err(fail)?;
        let mut buf = vec![0u8; 64 << 10];
        let mut len = 0u64;
        loop {
            let got = data.read(&mut buf).map_err(fail)?;
            if got == 0 {
                break;
            }
            len += got as u64;
            if len > consumed.get() + SPOOL_SLACK {
                return Err(WalkError::Format(format!(
                    "{ENVELOPE_NAME} expands to over {} bytes, beyond the archive's own size \
                     plus {SPOOL_SLACK}: an envelope's ciphertext does not compress, so this \
                     is no ESXi envelope; refused before it filled the temp space",
                    consumed.get() + SPOOL_SLACK
                )));
            }
            std::io::Write::write_all(&mut spool, &buf[..got]).map_err(fail)?;
        }
        self.sealed.envelope = Some((spool, len));
        Ok(())
    }

    fn read_keystore(
        &mut self,
        name: &'static str,
        meta: &EntryMeta,
        data: &mut dyn Read,
    ) -> Result<(), WalkError> {
        match &self.sealed.keystore {
            Some((_, seen)) if *seen == name => return Err(twice(name)),
            Some(_) => return Err(WalkError::Format(envelope::both_keystores_message())),
            None => {}
        }
        if meta.size > keystore::MAX_KEYSTORE {
            return Err(WalkError::Format(format!(
                "{name} is {} bytes, over the {}-byte limit",
                meta.size,
                keystore::MAX_KEYSTORE
            )));
        }
        let mut text = Vec::with_capacity(meta.size as usize);
        data.read_to_end(&mut text)
            .map_err(|err| WalkError::Format(format!("{name}: {}", describe_io(&err))))?;
        self.sealed.keystore = Some((text, name));
        Ok(())
    }

    /// Opens the encrypted layout once both members are in: authenticate, then read the
    /// decrypted `local.tgz` with the one inner reader.
    fn read_sealed(&mut self) -> Result<(), WalkError> {
        let envelope = self.sealed.envelope.take();
        let keystore = self.sealed.keystore.take();
        let (envelope, keystore) = match (envelope, keystore) {
            (None, None) => return Ok(()),
            (Some(_), None) => return Err(missing(KEYSTORE_NAME, ENVELOPE_NAME)),
            (None, Some((_, name))) => return Err(missing(ENVELOPE_NAME, name)),
            (Some(envelope), Some(keystore)) => (envelope, keystore),
        };
        if self.inner_seen {
            return Err(WalkError::Format(format!(
                "state.tgz holds both {INNER_NAME} and {ENVELOPE_NAME}"
            )));
        }
        let (spool, len) = envelope;
        let (keystore, keystore_name) = keystore;
        let (mut plain, header) = envelope::open(spool, len, &keystore)
            .map_err(|reason| WalkError::Format(format!("{ENVELOPE_NAME}: {reason}")))?;
        self.inner_seen = true;
        self.read_inner(&mut plain)?;
        self.sealed.encryption = Some(Encryption {
            mode: Mode::NoneMode,
            keystore,
            keystore_name,
            header: Some(header),
        });
        Ok(())
    }
}

fn twice(name: &str) -> WalkError {
    WalkError::Format(format!("state.tgz holds more than one {name}"))
}

fn missing(absent: &str, present: &str) -> WalkError {
    WalkError::Format(format!(
        "state.tgz holds {present} but no {absent}; the encrypted configuration cannot be opened"
    ))
}
