//! Logical entries of an untrusted tar stream, one layer at a time.
//!
//! tar-rs runs in raw mode so that GNU long names, long links and PAX records reach us as plain
//! entries: their size is checked against the header limit *before* a byte of them is read (a
//! 400 MB long name costs one 512-byte header), then they are applied to the entry they precede.
//!
//! Sparse members are marked, never expanded: a GNU `S` entry, or any PAX `GNU.sparse.*`
//! record (formats 0.0, 0.1 and 1.0; 1.0 also renames the member `GNUSparseFile.N/...` and
//! puts the map in its data), so the reader can refuse them instead of restoring the map or a
//! truncated file.

use std::io::{self, Read};

use super::streams::describe_io;
use super::Limits;

/// What kind of thing an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    Other(u8),
}

impl EntryKind {
    fn from_header(kind: tar::EntryType, name: &[u8]) -> EntryKind {
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous if name.ends_with(b"/") => {
                EntryKind::Directory
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::HardLink,
            tar::EntryType::Char => EntryKind::CharDevice,
            tar::EntryType::Block => EntryKind::BlockDevice,
            tar::EntryType::Fifo => EntryKind::Fifo,
            other => EntryKind::Other(other.as_byte()),
        }
    }

    /// A noun for messages: "a symlink", "a fifo", ...
    pub fn describe(self) -> String {
        match self {
            EntryKind::File => "a regular file".into(),
            EntryKind::Directory => "a directory".into(),
            EntryKind::Symlink => "a symlink".into(),
            EntryKind::HardLink => "a hard link".into(),
            EntryKind::CharDevice => "a character device".into(),
            EntryKind::BlockDevice => "a block device".into(),
            EntryKind::Fifo => "a fifo".into(),
            EntryKind::Other(byte) => format!("an entry of tar type `{}`", byte.escape_ascii()),
        }
    }
}

/// The header of one logical entry, extensions applied.
#[derive(Debug, Clone)]
pub struct EntryMeta {
    pub raw_name: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub link: Option<Vec<u8>>,
    /// A GNU or PAX sparse member (see the module doc).
    pub sparse: bool,
}

impl EntryMeta {
    /// The compact record of a regular file with this header, `path` and content digest.
    pub fn record_ref<'a>(&self, path: &'a str, sha256: [u8; 32]) -> crate::records::RecordRef<'a> {
        crate::records::RecordRef {
            path,
            sha256,
            size: self.size,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
        }
    }
}

/// Why a walk stopped: the input is malformed, or the callback failed.
#[derive(Debug)]
pub enum WalkError {
    Format(String),
    Visitor(anyhow::Error),
}

impl From<anyhow::Error> for WalkError {
    fn from(err: anyhow::Error) -> Self {
        WalkError::Visitor(err)
    }
}

/// Remembers whether reading the archive data failed, so a visitor error caused by corrupt
/// input is reported as a bad archive rather than as the visitor's own failure.
pub struct Tracked<'a> {
    inner: &'a mut dyn Read,
    failure: Option<String>,
}

impl<'a> Tracked<'a> {
    pub fn new(inner: &'a mut dyn Read) -> Self {
        Tracked {
            inner,
            failure: None,
        }
    }

    /// Why reading the underlying data failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn classify(&self, err: anyhow::Error) -> WalkError {
        match &self.failure {
            Some(reason) => WalkError::Format(format!("{}: {reason}", super::INNER_NAME)),
            None => WalkError::Visitor(err),
        }
    }
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|err| {
            self.failure = Some(describe_io(err));
        })
    }
}

#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    mtime: Option<i64>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    sparse: bool,
}

/// Walks every logical entry of the tar stream `reader`, calling `each` with its header and
/// content; returns `reader`, positioned just after the end-of-archive block.
pub fn walk<R: Read>(
    reader: R,
    limits: &Limits,
    layer: &str,
    mut each: impl FnMut(&EntryMeta, &mut dyn Read) -> Result<(), WalkError>,
) -> Result<R, WalkError> {
    let format = |text: String| WalkError::Format(format!("{layer}: {text}"));
    let io = |err: std::io::Error| WalkError::Format(format!("{layer}: {}", describe_io(&err)));
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(io)?.raw(true);
    let mut pending = Pending::default();
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(io)?;
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(io)?;
        if is_extension(kind) {
            if size > limits.max_header {
                return Err(format(format!(
                    "a header extension of {size} bytes exceeds the limit of {} bytes",
                    limits.max_header
                )));
            }
            read_extension(&mut entry, kind, &mut pending).map_err(&format)?;
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(format(format!("more than {} entries", limits.max_entries)));
        }
        let meta = entry_meta(&entry, size, std::mem::take(&mut pending)).map_err(io)?;
        if meta.size != size {
            return Err(format(
                "a PAX size record that differs from the header".into(),
            ));
        }
        each(&meta, &mut entry)?;
    }
    Ok(archive.into_inner())
}

fn is_extension(kind: tar::EntryType) -> bool {
    matches!(
        kind,
        tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink
            | tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
    )
}

fn read_extension<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    kind: tar::EntryType,
    pending: &mut Pending,
) -> Result<(), String> {
    match kind {
        tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|err| describe_io(&err))?;
            while bytes.last() == Some(&0) {
                bytes.pop();
            }
            if kind == tar::EntryType::GNULongName {
                pending.name = Some(bytes);
            } else {
                pending.link = Some(bytes);
            }
        }
        tar::EntryType::XHeader => read_pax(entry, pending)?,
        _ => {} // global PAX records carry nothing we use; their data is skipped.
    }
    Ok(())
}

fn read_pax<R: Read>(entry: &mut tar::Entry<'_, R>, pending: &mut Pending) -> Result<(), String> {
    let Some(records) = entry.pax_extensions().map_err(|err| describe_io(&err))? else {
        return Ok(());
    };
    for record in records {
        let record = record.map_err(|err| format!("bad PAX record: {}", describe_io(&err)))?;
        let value = record.value_bytes();
        let number = || -> Result<i64, String> {
            let text = std::str::from_utf8(value).map_err(|_| "bad PAX number".to_string())?;
            let whole = text.split('.').next().unwrap_or("");
            whole
                .parse::<i64>()
                .map_err(|_| format!("bad PAX number `{text}`"))
        };
        match record.key_bytes() {
            b"path" => pending.name = Some(value.to_vec()),
            b"linkpath" => pending.link = Some(value.to_vec()),
            b"mtime" => pending.mtime = Some(number()?),
            b"uid" => pending.uid = Some(u32::try_from(number()?).map_err(|e| e.to_string())?),
            b"gid" => pending.gid = Some(u32::try_from(number()?).map_err(|e| e.to_string())?),
            b"size" => pending.size = Some(u64::try_from(number()?).map_err(|e| e.to_string())?),
            key if key.starts_with(b"GNU.sparse.") => pending.sparse = true,
            _ => {}
        }
    }
    Ok(())
}

fn entry_meta<R: Read>(
    entry: &tar::Entry<'_, R>,
    size: u64,
    pending: Pending,
) -> std::io::Result<EntryMeta> {
    let header = entry.header();
    let raw_name = match pending.name {
        Some(name) => name,
        None => header.path_bytes().into_owned(),
    };
    let link = match pending.link {
        Some(link) => Some(link),
        None => header.link_name_bytes().map(|l| l.into_owned()),
    };
    let kind = EntryKind::from_header(header.entry_type(), &raw_name);
    let sparse = pending.sparse || header.entry_type() == tar::EntryType::GNUSparse;
    let id = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
    Ok(EntryMeta {
        kind,
        mode: header.mode()? & 0o7777,
        uid: pending.uid.unwrap_or(id(header.uid()?)),
        gid: pending.gid.unwrap_or(id(header.gid()?)),
        mtime: pending
            .mtime
            .unwrap_or(i64::try_from(header.mtime()?).unwrap_or(i64::MAX)),
        size: pending.size.unwrap_or(size),
        link,
        raw_name,
        sparse,
    })
}
