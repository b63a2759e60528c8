//! The one archive writer: persisted files in, a deterministic `state.tgz` byte stream out.
//!
//! The inner `local.tgz` is streamed into an unnamed temp file (never whole into memory), each
//! file is read once and hashed on the way, and the manifest is built from those hashes. Bytes
//! depend only on the files' paths, content and recorded metadata: members sorted, numeric
//! owners, no user names, gzip header time 0, member times derived from the files.
//! `local.tgz` is deflated at level 6 in fixed blocks on every CPU ([`super::gzip_writer::ParallelGzip`],
//! same bytes whatever the thread count); the outer layer stores `local.tgz` as is and deflates
//! only the manifest ([`super::gzip_writer::OuterGzip`]).
//!
//! The encrypted layout ([`write_archive_file`] with an [`Encryption`]) writes
//! `encryption.info` (carried over byte for byte), then `local.tgz` sealed as `local.tgz.ve`
//! under the same key with a fresh random IV, then the manifest; so only the IV, and with it the
//! ciphertext and tag, differs between two writes of the same files. Such an archive is read
//! back in full through the one reader (authenticated, decrypted, every hash compared) before
//! the caller renames it into place.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::envelope::{seal, Encryption, ENVELOPE_NAME};
use super::gzip_writer::{self, OuterGzip, ParallelGzip};
use super::manifest::write_table_json;
use super::{Limits, INNER_NAME, MANIFEST_NAME};
use crate::fs::hostfile::RootReader;
use crate::records::{hex, FileTable, Records};

/// Deflate level of `local.tgz` (what `gzip -6` uses).
const INNER_LEVEL: u32 = 6;
/// Deflate level of the manifest member (JSON text, worth compressing).
const MANIFEST_LEVEL: u32 = 6;
const COPY_BUFFER: usize = 128 << 10;

/// A file to persist: its root-relative member name and where to read it (tests build
/// archives of such files).
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub abs: std::path::PathBuf,
}

/// What was written: how many members, and the size and sha256 of the whole `state.tgz`. The
/// record of each member (and the stat it was read under) is in the table it was written from.
#[derive(Debug)]
pub struct WrittenArchive {
    pub files: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// Host name and build recorded in the manifest.
#[derive(Debug, Clone, Default)]
pub struct ArchiveLabel {
    pub host: String,
    pub build: String,
}

#[cfg(test)]
/// Writes a complete plain `state.tgz` of `files` to `out`. `scratch` holds the inner temp file.
pub fn write_archive<W: Write>(
    out: W,
    files: &[SourceFile],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    write_layout(out, &mut table_of(files)?, None, label, scratch, None)
}

/// As [`write_archive`], for an undo archive: its manifest says `"undo": true` and lists
/// `remove`, the paths a restore of it removes (the files its restore created).
pub fn write_archive_removing<W: Write>(
    out: W,
    files: &mut FileTable,
    remove: &[String],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    write_layout(out, files, Some(remove), label, scratch, None)
}

/// The files to write as a table, each read from its `abs`.
#[cfg(test)]
fn table_of(files: &[SourceFile]) -> Result<FileTable> {
    let mut table = FileTable::new(Path::new("/"));
    for file in files {
        table.push_unread(&file.path, file.abs.clone())?;
    }
    Ok(table)
}

/// The root-relative files `paths` under `root` as a table, each to be read through the
/// in-root walk (an undo archive's copies of the files a restore overwrites).
pub fn table_under<'p>(root: &Path, paths: impl IntoIterator<Item = &'p str>) -> Result<FileTable> {
    let mut table = FileTable::new(root);
    for path in paths {
        table.push_unread_here(path)?;
    }
    Ok(table)
}

/// Writes a complete `state.tgz` of `files` into `out` (a new temp file), encrypted with
/// `encryption`'s key store when given; each file's record (its digest and the stat it was
/// read under) is left in `files`. An encrypted archive is then read back in full and its
/// hashes compared before this returns, so a caller never renames an envelope that does not
/// open.
pub fn write_archive_file(
    out: &mut File,
    files: &mut FileTable,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    let written = write_layout(&mut *out, files, None, label, scratch, encryption)?;
    if encryption.is_some() {
        check_written(out, files)?;
    }
    Ok(written)
}

fn write_layout<W: Write>(
    out: W,
    files: &mut FileTable,
    undo: Option<&[String]>,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    // Members in byte-wise path order (the selection is already: then this is one pass).
    files.sort_by_path();
    within_name_limit(files.indices().map(|i| files.path(i).len() as u64).sum())?;
    let mut inner = tempfile::tempfile_in(scratch)
        .with_context(|| format!("cannot create a temp file in `{}`", scratch.display()))?;
    write_inner(&mut inner, files)?;
    let inner_len = inner
        .stream_position()
        .context("cannot size the inner archive")?;
    inner.rewind().context("cannot rewind the inner archive")?;
    let sizes = files.indices().map(|i| files.stat(i).size);
    within_reader_limits(files.len(), sizes.sum(), inner_len)?;

    let mtimes = files.indices().map(|i| files.record(i).mtime);
    let member_mtime = mtimes.max().unwrap_or(0).max(0) as u64;
    // The manifest's JSON streams from the table into a temp file: at 100,000 files a copy
    // of the records would be tens of MiB.
    let (mut json, json_len) = manifest_file(files, label, undo, scratch)?;
    let mut counted = HashingWriter::new(BufWriter::with_capacity(COPY_BUFFER, out));
    {
        let gz = OuterGzip::new(&mut counted).context("cannot write the archive")?;
        let mut outer = tar::Builder::new(gz);
        match encryption {
            None => {
                let mut header = member_header(inner_len, 0o600, member_mtime);
                outer
                    .append_data(&mut header, INNER_NAME, &mut inner)
                    .context("cannot write the outer archive")?;
            }
            Some(encryption) => {
                append_sealed(&mut outer, encryption, &mut inner, inner_len, member_mtime)?
            }
        }
        outer
            .get_mut()
            .compress_rest(MANIFEST_LEVEL)
            .context("cannot write the outer archive")?;
        let mut header = member_header(json_len, 0o600, member_mtime);
        outer
            .append_data(&mut header, MANIFEST_NAME, &mut json)
            .context("cannot write the manifest")?;
        let gz = outer
            .into_inner()
            .context("cannot finish the outer archive")?;
        gz.finish().context("cannot finish the outer gzip stream")?;
    }
    counted.inner.flush().context("cannot write the archive")?;
    Ok(WrittenArchive {
        files: files.len(),
        bytes: counted.bytes,
        sha256: hex(&counted.hasher.finalize()),
    })
}

/// The manifest's JSON in an unnamed temp file in `scratch`, rewound, and its length.
fn manifest_file(
    files: &FileTable,
    label: &ArchiveLabel,
    undo: Option<&[String]>,
    scratch: &Path,
) -> Result<(File, u64)> {
    let mut file = tempfile::tempfile_in(scratch)
        .with_context(|| format!("cannot create a temp file in `{}`", scratch.display()))?;
    let mut out = BufWriter::with_capacity(COPY_BUFFER, &mut file);
    write_table_json(&mut out, &label.host, &label.build, files, undo)
        .and_then(|()| out.flush())
        .context("cannot write the manifest")?;
    drop(out);
    let len = file.stream_position().context("cannot size the manifest")?;
    file.rewind().context("cannot rewind the manifest")?;
    Ok((file, len))
}

/// The key store as it was (under the name it had), then `local.tgz` sealed as `local.tgz.ve`.
fn append_sealed<W: Write>(
    outer: &mut tar::Builder<W>,
    encryption: &Encryption,
    inner: &mut File,
    inner_len: u64,
    mtime: u64,
) -> Result<()> {
    let keystore = encryption.keystore.as_slice();
    let mut header = member_header(keystore.len() as u64, 0o600, mtime);
    outer
        .append_data(&mut header, encryption.keystore_name, keystore)
        .context("cannot write the outer archive")?;
    let mut sealing = seal::seal(encryption, inner, inner_len)
        .map_err(|reason| anyhow::anyhow!("cannot encrypt the new archive: {reason}"))?;
    let mut header = member_header(seal::sealed_len(inner_len), 0o600, mtime);
    outer
        .append_data(&mut header, ENVELOPE_NAME, &mut sealing)
        .context("cannot write the encrypted local.tgz.ve")?;
    Ok(())
}

/// Refuses to write an archive the readers would refuse at their default limits (the entry
/// count, and what both layers expand to: the files, their tar headers and `local.tgz`).
fn within_reader_limits(count: usize, content: u64, inner_len: u64) -> Result<()> {
    let limits = Limits::default();
    if count as u64 > limits.max_entries {
        bail!(
            "the selection holds {count} files, over the {}-entry limit of every archive \
             reader; nothing was written; exclude files (statectl.toml `exclude`) and run again",
            limits.max_entries
        );
    }
    let headers = 1024 * (count as u64 + 2);
    let expanded = content + headers + inner_len;
    if expanded > limits.max_expanded {
        bail!(
            "the archive would expand to {expanded} bytes, over the {}-byte limit of every \
             archive reader; nothing was written; exclude files (statectl.toml `exclude`) and \
             run again",
            limits.max_expanded
        );
    }
    Ok(())
}

/// Refuses names the readers would not keep together (their bytes, all files together).
fn within_name_limit(name_bytes: u64) -> Result<()> {
    let cap = super::read::MAX_KEPT_NAME_BYTES;
    if name_bytes > cap {
        bail!(
            "the selection's paths take {name_bytes} bytes together, over the {cap}-byte limit \
             of every archive reader; nothing was written; exclude files (statectl.toml \
             `exclude`) or shorten their paths, and run again"
        );
    }
    Ok(())
}

/// Reads the archive just written to `out` through the one reader and compares every record
/// with what was written (`files`).
fn check_written(out: &mut File, files: &FileTable) -> Result<()> {
    out.rewind().context("cannot rewind the new archive")?;
    let limits = Limits {
        max_expanded: u64::MAX,
        max_entries: u64::MAX,
        ..Limits::default()
    };
    let name = Path::new("the new archive");
    let summary = super::read_archive_stream(&mut *out, name, &limits, &mut super::CheckOnly)
        .context("the archive just written does not read back; nothing was replaced")?;
    summary.ensure_safe()?;
    let same = summary.files.len() == files.len()
        && summary
            .files
            .iter()
            .enumerate()
            .all(|(i, read)| read == files.record(i));
    if !same || summary.encryption.is_none() {
        bail!(
            "the encrypted archive just written reads back different files; nothing was replaced"
        );
    }
    out.rewind().context("cannot rewind the new archive")?;
    Ok(())
}

/// Writes every file of `files` into `local.tgz`, leaving in the table what was read.
fn write_inner(inner: &mut File, files: &mut FileTable) -> Result<()> {
    let reader = RootReader::open(files.root())?;
    let gz = ParallelGzip::new(inner, INNER_LEVEL, gzip_writer::threads());
    let mut builder = tar::Builder::new(gz);
    for i in files.indices() {
        append_file(&mut builder, files, &reader, i)?;
    }
    let gz = builder
        .into_inner()
        .context("cannot finish the inner archive")?;
    gz.finish().context("cannot finish the inner gzip stream")?;
    Ok(())
}

/// Appends file `i` of `files` (opened through the in-root walk of `reader`, and the file
/// the selection saw), recording in the table the stat it was read under and the digest of
/// what was read.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    files: &mut FileTable,
    reader: &RootReader,
    i: usize,
) -> Result<()> {
    let abs = files.location(i);
    let (mut handle, meta) = files
        .open(reader, i)
        .with_context(|| format!("cannot open `{}` to archive it", abs.display()))?;
    // A pinned file (a ConfigStore snapshot) is recorded with the stat of what it stands for.
    let (mode, uid, gid, mtime) = if files.pinned(i) {
        let record = files.record(i);
        if record.size != meta.len() {
            return Err(crate::error::Error::FileChanged { path: abs }.into());
        }
        (record.mode, record.uid, record.gid, record.mtime)
    } else {
        (
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid(),
            meta.mtime().max(0),
        )
    };
    let mut header = tar::Header::new_gnu();
    header.set_size(meta.len());
    header.set_mode(mode);
    header.set_uid(u64::from(uid));
    header.set_gid(u64::from(gid));
    header.set_mtime(mtime as u64);
    header.set_entry_type(tar::EntryType::Regular);
    let mut reader = ExactReader::new(&mut handle, meta.len(), &abs);
    builder
        .append_data(&mut header, files.path(i), &mut reader)
        .with_context(|| format!("cannot archive `{}`", abs.display()))?;
    let sha256 = reader.finish()?;
    files.set_read(i, &meta, sha256);
    Ok(())
}

/// Reads exactly `len` bytes, hashing them; a file that shrinks or grows meanwhile is an error.
struct ExactReader<'a> {
    file: &'a mut File,
    left: u64,
    path: &'a Path,
    hasher: Sha256,
}

impl<'a> ExactReader<'a> {
    fn new(file: &'a mut File, len: u64, path: &'a Path) -> Self {
        ExactReader {
            file,
            left: len,
            path,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> Result<[u8; 32]> {
        let mut probe = [0u8; 1];
        let grew = self
            .file
            .read(&mut probe)
            .with_context(|| format!("cannot read `{}`", self.path.display()))?;
        if self.left != 0 || grew != 0 {
            return Err(crate::error::Error::FileChanged {
                path: self.path.to_path_buf(),
            }
            .into());
        }
        Ok(self.hasher.finalize().into())
    }
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.file.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "`{}` shrank while it was being archived; run again",
                    self.path.display()
                ),
            ));
        }
        self.hasher.update(&buf[..got]);
        self.left -= got as u64;
        Ok(got)
    }
}

fn member_header(size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// A writer that counts and hashes what passes through.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Sha256,
    pub bytes: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_readers_cap_are_refused() {
        let cap = super::super::read::MAX_KEPT_NAME_BYTES;
        assert!(within_name_limit(100_000 * 200).is_ok());
        assert!(within_name_limit(cap).is_ok());
        let err = within_name_limit(cap + 1).unwrap_err();
        assert!(err.to_string().contains("byte limit"), "{err}");
    }

    #[test]
    fn a_selection_over_the_entry_limit_is_refused() {
        let limit = Limits::default().max_entries as usize;
        assert!(within_reader_limits(limit, 0, 0).is_ok());
        let err = within_reader_limits(limit + 1, 0, 0).unwrap_err();
        assert!(err.to_string().contains("100000-entry limit"), "{err}");
    }

    #[test]
    fn a_selection_expanding_past_the_size_limit_is_refused() {
        let half = Limits::default().max_expanded / 2;
        assert!(within_reader_limits(2, half + half / 2, 1 << 20).is_ok());
        let err = within_reader_limits(2, 2 * half, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("byte limit"), "{err}");
    }
}
