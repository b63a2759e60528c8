//! `pack`: build a `state.tgz` (ESXi layout, with manifest) from a directory tree, atomically;
//! `--like ARCHIVE` encrypts it with that archive's key store (re-encrypting an edited tree).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use walkdir::WalkDir;

use crate::archive::bundle::write_bundle_text;
use crate::archive::envelope::guard::check_plaintext_over;
use crate::archive::envelope::Encryption;
use crate::archive::names::normalize_member_name;
use crate::archive::read::BundleInfo;
use crate::archive::{
    read_archive, write_archive_file, ArchiveLabel, CheckOnly, WrittenArchive, STATE_NAME,
};
use crate::bank::{next_boot, read_banks};
use crate::fs::atomic;
use crate::host::Host;
use crate::records::FileTable;

/// What `pack` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackReport {
    pub output: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// Packs the regular files under `dir` into `output`. The manifest names the host found in
/// the tree (esx.conf or etc/hostname) and the next-boot bank's build, when there is one.
/// With `like`, the output takes that archive's layout: encrypted with its key store when it
/// is encrypted. A plaintext archive never replaces an encrypted `output`.
pub fn pack(host: &Host, dir: &Path, output: &Path, like: Option<&Path>) -> Result<PackReport> {
    let label = ArchiveLabel {
        host: Host::new(dir.to_path_buf()).hostname()?,
        build: next_boot_build(host),
    };
    let encryption = match like {
        Some(like) => read_archive(like, &host.limits, &mut CheckOnly)?.encryption,
        None => None,
    };
    if encryption.is_none() {
        check_plaintext_over(output, false, LIKE_HINT, &host.limits)?;
    }
    let written = pack_tree(dir, output, &label, host.run_dir()?, encryption.as_ref())?;
    Ok(PackReport {
        output: output.to_path_buf(),
        files: written.files,
        bytes: written.bytes,
        sha256: written.sha256,
    })
}

/// What `pack` suggests instead of writing plaintext over an encrypted archive.
const LIKE_HINT: &str = "add --like ARCHIVE to encrypt the new one with its key store";

/// Writes every regular file under `dir` into `output` atomically (temp file beside it),
/// encrypted with `encryption` when given.
pub fn pack_tree(
    dir: &Path,
    output: &Path,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    // Absolute, so the file table's names resolve from any working directory.
    let dir = &dir
        .canonicalize()
        .with_context(|| format!("cannot open directory `{}`", dir.display()))?;
    refuse_output_inside(dir, output)?;
    let mut files = collect_files(dir)?;
    let parent = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let fail = || format!("cannot write `{}`", output.display());
    atomic::remove_stale_temps(parent).with_context(fail)?;
    let mut temp = atomic::temp_in(parent).with_context(fail)?;
    let written = write_archive_file(temp.as_file_mut(), &mut files, label, scratch, encryption)
        .with_context(fail)?;
    atomic::commit(temp, output).with_context(fail)?;
    Ok(written)
}

/// As [`pack_tree`] into a bundle: the tree is packed into a `state.tgz` in a private temp
/// directory of `scratch`, then wrapped with `bundle`'s `Manifest.txt` (kept byte for byte)
/// into `output` atomically.
pub fn pack_tree_into_bundle(
    dir: &Path,
    output: &Path,
    bundle: &BundleInfo,
    label: &ArchiveLabel,
    scratch: &Path,
    encryption: Option<&Encryption>,
) -> Result<WrittenArchive> {
    let spool = atomic::temp_dir_in(scratch)?;
    let state = spool.path().join(STATE_NAME);
    let written = pack_tree(dir, &state, label, scratch, encryption)?;
    let fail = || format!("cannot write `{}`", output.display());
    let mut source = std::fs::File::open(&state).with_context(fail)?;
    let parent = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = atomic::temp_in(parent).with_context(fail)?;
    let now = crate::clock::now_secs().max(0) as u64;
    let text = (bundle.text.as_slice(), bundle.mtime);
    write_bundle_text(temp.as_file_mut(), text, &mut source, &state, now).with_context(fail)?;
    atomic::commit(temp, output).with_context(fail)?;
    Ok(written)
}

fn next_boot_build(host: &Host) -> String {
    let banks = read_banks(host);
    next_boot(&banks)
        .and_then(|name| banks.get(name).build().map(str::to_string))
        .unwrap_or_default()
}

fn refuse_output_inside(dir: &Path, output: &Path) -> Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open directory `{}`", dir.display()))?;
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(parent) = parent.canonicalize() {
        if parent.starts_with(&dir) {
            bail!(
                "--output `{}` is inside the packed directory `{}`; write it elsewhere",
                output.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// The regular files under `dir`, named relative to it. `.#*` branch copies are skipped (they
/// are never persisted); symlinks and special files are refused, archives hold files only.
fn collect_files(dir: &Path) -> Result<FileTable> {
    let mut files = FileTable::new(dir);
    for entry in WalkDir::new(dir).min_depth(1).follow_links(false) {
        let entry = entry.with_context(|| format!("cannot walk `{}`", dir.display()))?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if entry.file_name().to_string_lossy().starts_with(".#") {
            continue;
        }
        if !kind.is_file() {
            bail!(
                "`{}` is a symlink or special file; archives hold regular files only — remove it or replace it with a file",
                entry.path().display()
            );
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let raw = rel.as_os_str().as_encoded_bytes();
        let path = normalize_member_name(raw).map_err(|reason| {
            anyhow::anyhow!(
                "cannot pack `{}`: {reason}; rename it",
                entry.path().display()
            )
        })?;
        if Path::new(&path) == rel {
            files.push_unread_here(&path)?;
        } else {
            files.push_unread(&path, entry.path().to_path_buf())?;
        }
    }
    Ok(files)
}
