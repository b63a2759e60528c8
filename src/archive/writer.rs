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

use std::fs::{File, Metadata};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::envelope::{seal, Encryption, ENVELOPE_NAME, KEYSTORE_NAME};
use super::gzip_writer::{self, OuterGzip, ParallelGzip};
use super::{FileRecord, Limits, Manifest, INNER_NAME, MANIFEST_NAME};

/// Deflate level of `local.tgz` (what `gzip -6` uses).
const INNER_LEVEL: u32 = 6;
/// Deflate level of the manifest member (JSON text, worth compressing).
const MANIFEST_LEVEL: u32 = 6;
const COPY_BUFFER: usize = 128 << 10;

/// A file to persist: its root-relative member name and where to read it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub abs: PathBuf,
}

/// What was written: one record (and the stat it was read under) per member, plus the
/// size and sha256 of the whole `state.tgz`.
#[derive(Debug)]
pub struct WrittenArchive {
    pub records: Vec<FileRecord>,
    pub metadata: Vec<Metadata>,
    pub bytes: u64,
    pub sha256: String,
}

/// Host name and build recorded in the manifest.
#[derive(Debug, Clone, Default)]
pub struct ArchiveLabel {
    pub host: String,
    pub build: String,
}

/// Writes a complete plain `state.tgz` of `files` to `out`. `scratch` holds the inner temp file.
pub fn write_archive<W: Write>(
    out: W,
    files: &[SourceFile],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    write_layout(out, files, &[], label, scratch, None)
}

/// As [`write_archive`], with a manifest that lists `remove`: the paths a restore of it
/// removes (an undo archive's record of the files its restore created).
pub fn write_archive_removing<W: Write>(
    out: W,
    files: &[SourceFile],
    remove: &[String],
    label: &ArchiveLabel,
    scratch: &Path,
) -> Result<WrittenArchive> {
    write_layout(out, files, remove, label, scratch, None)
}

/// Writes a complete `state.tgz` into `out` (a new temp file), encrypted with `encryption`'s
/// key store when given; an encrypted archive is then read back in full and its hashes
/// compared before this returns, so a caller never renames an envelope that does not open.
pub fn write_archive_file(
    out: &mut File,
    files: &[SourceFile],
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    let written = write_layout(&mut *out, files, &[], label, scratch, encryption)?;
    if encryption.is_some() {
        check_written(out, &written)?;
    }
    Ok(written)
}

fn write_layout<W: Write>(
    out: W,
    files: &[SourceFile],
    remove: &[String],
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut inner = tempfile::tempfile_in(scratch)
        .with_context(|| format!("cannot create a temp file in `{}`", scratch.display()))?;
    let (records, metadata) = write_inner(&mut inner, &sorted)?;
    let inner_len = inner
        .stream_position()
        .context("cannot size the inner archive")?;
    inner.rewind().context("cannot rewind the inner archive")?;
    within_reader_limits(&records, inner_len)?;

    let member_mtime = records.iter().map(|r| r.mtime).max().unwrap_or(0).max(0) as u64;
    // The records go into the manifest and come back out (not cloned); its JSON streams into
    // a temp file: at 100,000 files either copy would be tens of MiB.
    let mut manifest = Manifest {
        format: super::manifest::FORMAT,
        host: label.host.clone(),
        build: label.build.clone(),
        files: records,
        remove: remove.to_vec(),
    };
    let (mut json, json_len) = manifest_file(&manifest, scratch)?;
    let records = std::mem::take(&mut manifest.files);
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
        records,
        metadata,
        bytes: counted.bytes,
        sha256: hex(&counted.hasher.finalize()),
    })
}

/// The manifest's JSON in an unnamed temp file in `scratch`, rewound, and its length.
fn manifest_file(manifest: &Manifest, scratch: &Path) -> Result<(File, u64)> {
    let mut file = tempfile::tempfile_in(scratch)
        .with_context(|| format!("cannot create a temp file in `{}`", scratch.display()))?;
    let mut out = BufWriter::with_capacity(COPY_BUFFER, &mut file);
    manifest
        .write_json(&mut out)
        .and_then(|()| out.flush())
        .context("cannot write the manifest")?;
    drop(out);
    let len = file.stream_position().context("cannot size the manifest")?;
    file.rewind().context("cannot rewind the manifest")?;
    Ok((file, len))
}

/// `encryption.info` as it was, then `local.tgz` sealed as `local.tgz.ve`.
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
        .append_data(&mut header, KEYSTORE_NAME, keystore)
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
fn within_reader_limits(records: &[FileRecord], inner_len: u64) -> Result<()> {
    let limits = Limits::default();
    if records.len() as u64 > limits.max_entries {
        bail!(
            "the selection holds {} files, over the {}-entry limit of every archive reader; \
             nothing was written; exclude files (statectl.toml `exclude`) and run again",
            records.len(),
            limits.max_entries
        );
    }
    let headers = 1024 * (records.len() as u64 + 2);
    let expanded = records.iter().map(|r| r.size).sum::<u64>() + headers + inner_len;
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

/// Reads the archive just written to `out` through the one reader and compares every hash.
fn check_written(out: &mut File, written: &WrittenArchive) -> Result<()> {
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
    let same = summary.files.len() == written.records.len()
        && summary
            .files
            .iter()
            .zip(&written.records)
            .all(|(read, wrote)| read == wrote);
    if !same || summary.encryption.is_none() {
        bail!(
            "the encrypted archive just written reads back different files; nothing was replaced"
        );
    }
    out.rewind().context("cannot rewind the new archive")?;
    Ok(())
}

fn write_inner(
    inner: &mut File,
    files: &[&SourceFile],
) -> Result<(Vec<FileRecord>, Vec<Metadata>)> {
    let gz = ParallelGzip::new(inner, INNER_LEVEL, gzip_writer::threads());
    let mut builder = tar::Builder::new(gz);
    let mut records = Vec::with_capacity(files.len());
    let mut metadata = Vec::with_capacity(files.len());
    for file in files {
        let (record, meta) = append_file(&mut builder, file)?;
        records.push(record);
        metadata.push(meta);
    }
    let gz = builder
        .into_inner()
        .context("cannot finish the inner archive")?;
    gz.finish().context("cannot finish the inner gzip stream")?;
    Ok((records, metadata))
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    file: &SourceFile,
) -> Result<(FileRecord, Metadata)> {
    let mut handle = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&file.abs)
        .with_context(|| format!("cannot open `{}` to archive it", file.abs.display()))?;
    let meta = handle
        .metadata()
        .with_context(|| format!("cannot stat `{}`", file.abs.display()))?;
    if !meta.is_file() {
        bail!(
            "`{}` is no longer a regular file; run again",
            file.abs.display()
        );
    }
    let mode = meta.mode() & 0o7777;
    let mtime = meta.mtime().max(0);
    let mut header = tar::Header::new_gnu();
    header.set_size(meta.len());
    header.set_mode(mode);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(mtime as u64);
    header.set_entry_type(tar::EntryType::Regular);
    let mut reader = ExactReader::new(&mut handle, meta.len(), &file.abs);
    builder
        .append_data(&mut header, &file.path, &mut reader)
        .with_context(|| format!("cannot archive `{}`", file.abs.display()))?;
    let sha256 = reader.finish()?;
    let record = FileRecord {
        path: file.path.clone(),
        sha256,
        size: meta.len(),
        mode,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime,
    };
    Ok((record, meta))
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

    fn finish(self) -> Result<String> {
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
        Ok(hex(&self.hasher.finalize()))
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

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: u64) -> FileRecord {
        FileRecord {
            path: "etc/x".into(),
            sha256: String::new(),
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    #[test]
    fn a_selection_over_the_entry_limit_is_refused() {
        let limit = Limits::default().max_entries as usize;
        assert!(within_reader_limits(&vec![record(0); limit], 0).is_ok());
        let err = within_reader_limits(&vec![record(0); limit + 1], 0).unwrap_err();
        assert!(err.to_string().contains("100000-entry limit"), "{err}");
    }

    #[test]
    fn a_selection_expanding_past_the_size_limit_is_refused() {
        let half = Limits::default().max_expanded / 2;
        assert!(within_reader_limits(&[record(half), record(half / 2)], 1 << 20).is_ok());
        let err = within_reader_limits(&[record(half), record(half)], 1 << 20).unwrap_err();
        assert!(err.to_string().contains("byte limit"), "{err}");
    }
}
