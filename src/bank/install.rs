//! Putting an archive into a bank: the verified atomic copy and teaching `boot.cfg` to list it.
//!
//! Shared by `backup` (second bank of a staged upgrade) and `bank sync`. The copy goes to a temp
//! file in the target bank, is fsynced, then read back from the medium (its cached pages are
//! dropped first, so the read reaches the device where the kernel allows) and its sha256
//! compared with the source's before the rename: a failing SD card or USB stick is caught while
//! the old archive is still in place. `boot.cfg` is changed only after the archive is there, so
//! it never names a missing one.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{bootcfg, BootCfg};
use crate::archive::{streams::HashingReader, STATE_NAME};
use crate::fs::atomic;

/// Copies `source` over `target` atomically and returns the sha256 of the bytes now at
/// `target`. With `expected`, the source must hash to it (it did not change since it was
/// written or verified).
pub fn copy_verified(source: &Path, target: &Path, expected: Option<&str>) -> Result<String> {
    let bank = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let fail = || {
        format!(
            "cannot copy `{}` into bank `{}` (its old archive is kept); check that the bank \
             is mounted read-write and has free space",
            source.display(),
            bank.display()
        )
    };
    let mut temp = atomic::temp_in(bank).with_context(fail)?;
    // Non-blocking, a regular file: one swapped for a FIFO since it was verified cannot hang.
    let (file, _) = crate::fs::hostfile::open_regular(source)?
        .with_context(|| format!("cannot open `{}`: it is gone", source.display()))?;
    let mut reader = HashingReader::new(file);
    io::copy(&mut reader, temp.as_file_mut()).with_context(fail)?;
    let source_sha = reader.hex_digest();
    if expected.is_some_and(|sha| sha != source_sha) {
        bail!(
            "`{}` changed while it was copied; run the command again",
            source.display()
        );
    }
    temp.as_file().sync_all().with_context(fail)?;
    let written_sha = read_back(temp.path()).with_context(fail)?;
    if written_sha != source_sha {
        bail!(
            "the copy written into bank `{}` reads back with sha256 {written_sha}, not {source_sha}: \
             the boot medium may be failing; its old archive is kept",
            bank.display()
        );
    }
    atomic::commit(temp, target).with_context(fail)?;
    Ok(source_sha)
}

/// Hashes a flushed file through a fresh read-only open, after asking the kernel to drop its
/// cached pages. A fresh open, not the write handle: fusefat (FAT banks) returns wrong bytes
/// when a file is read back through the descriptor that wrote it.
fn read_back(path: &Path) -> io::Result<String> {
    let file = File::open(path)?;
    // Advisory: where the kernel keeps the pages anyway, the read-back checks the page cache.
    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    let mut reader = HashingReader::new(file);
    io::copy(&mut reader.by_ref(), &mut io::sink())?;
    Ok(reader.hex_digest())
}

/// Makes each bank's `boot.cfg` list `state.tgz` (a bank without one is skipped), for every
/// command that puts an archive into a bank. A `boot.cfg` that parses yet cannot be saved
/// (full, read-only or failing medium) is an error naming the bank, because an archive the
/// loader is not told about is not loaded at boot. A `boot.cfg` that does not parse or cannot
/// take the module stays a warning and is never rewritten.
pub fn ensure_state_listed(banks: &[PathBuf]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for bank in banks {
        let path = bank.join("boot.cfg");
        if !path.exists() {
            continue;
        }
        let updated = match BootCfg::load(&path).map(|cfg| cfg.with_module(STATE_NAME)) {
            Ok(Ok(Some(updated))) => updated,
            Ok(Ok(None)) => continue,
            Ok(Err(reason)) => {
                warnings.push(format!(
                    "`{}` was not changed to list {STATE_NAME}: {reason}",
                    path.display()
                ));
                continue;
            }
            Err(err) => {
                warnings.push(format!(
                    "`{}` was not changed to list {STATE_NAME}: {err:#}",
                    path.display()
                ));
                continue;
            }
        };
        bootcfg::save(&path, &updated).with_context(|| {
            format!(
                "cannot make `{}` list {STATE_NAME} (the archive is in place but the loader \
                 will not read it); check that bank `{}` is mounted read-write and has free \
                 space, then run again",
                path.display(),
                bank.display()
            )
        })?;
    }
    Ok(warnings)
}

/// The boot options file of a bank (`esxcfg-info -c` output, gzip'd).
pub const USEROPTS: &str = "useropts.gz";
/// Larger decompressed boot options are refused (real ones are a line).
const USEROPTS_MAX: u64 = 64 << 10;

/// The decompressed `useropts.gz` of `bank`, trailing newlines removed (as `$(...)` in
/// `firmwareConfig.sh` does); `None` when the bank has none.
pub fn read_useropts(bank: &Path) -> Result<Option<String>> {
    let path = bank.join(USEROPTS);
    let Some((file, _)) = crate::fs::hostfile::open_regular(&path)? else {
        return Ok(None);
    };
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(file)
        .take(USEROPTS_MAX + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("cannot decompress `{}`", path.display()))?;
    if text.len() as u64 > USEROPTS_MAX {
        bail!(
            "`{}` holds over {USEROPTS_MAX} bytes of boot options",
            path.display()
        );
    }
    let text = String::from_utf8_lossy(&text);
    Ok(Some(text.trim_end_matches('\n').to_string()))
}

/// Applies a bundle's boot options to `bank` as `firmwareConfig.sh --restore` does:
/// `useropts.gz` becomes USEROPTS and a newline, gzip'd (`echo "$USEROPTS" | gzip`), replaced
/// atomically; `kernelopt=` becomes KERNELOPTS, through the one-line `boot.cfg` rewrite (every
/// other byte kept). A bank without `boot.cfg` gets only `useropts.gz`.
pub fn apply_boot_options(bank: &Path, kernelopts: &str, useropts: &str) -> Result<()> {
    let fail = || {
        format!(
            "cannot write the bundle's boot options into bank `{}`; check that it is mounted \
             read-write and has free space",
            bank.display()
        )
    };
    let cfg_path = bank.join("boot.cfg");
    let updated = if cfg_path.exists() {
        let cfg = BootCfg::load(&cfg_path)?;
        let updated = cfg
            .with_value("kernelopt", kernelopts)
            .map_err(|reason| anyhow::anyhow!("`{}`: {reason}", cfg_path.display()))?;
        (updated.bytes() != cfg.bytes()).then_some(updated)
    } else {
        None
    };
    let mut temp = atomic::temp_in(bank).with_context(fail)?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(temp.as_file_mut(), flate2::Compression::default());
    gz.write_all(format!("{useropts}\n").as_bytes())
        .and_then(|()| gz.finish().map(|_| ()))
        .with_context(fail)?;
    atomic::commit(temp, &bank.join(USEROPTS)).with_context(fail)?;
    if let Some(updated) = updated {
        bootcfg::save(&cfg_path, &updated).with_context(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_options_land_and_round_trip() {
        let bank = tempfile::tempdir().unwrap();
        let cfg = "bootstate=0\r\nkernelopt=old\r\nmodules=b.b00\r\nbuild=1\r\nupdated=1\r\n";
        std::fs::write(bank.path().join("boot.cfg"), cfg).unwrap();
        assert_eq!(read_useropts(bank.path()).unwrap(), None);
        apply_boot_options(bank.path(), "autoPartition=FALSE", "noIOMMU").unwrap();
        let text = std::fs::read_to_string(bank.path().join("boot.cfg")).unwrap();
        assert_eq!(
            text,
            cfg.replace("kernelopt=old", "kernelopt=autoPartition=FALSE")
        );
        assert_eq!(
            read_useropts(bank.path()).unwrap().as_deref(),
            Some("noIOMMU")
        );
    }

    #[test]
    fn copy_is_byte_exact_private_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("a.tgz");
        std::fs::write(&source, b"archive bytes").unwrap();
        let bank = dir.path().join("bank");
        std::fs::create_dir(&bank).unwrap();
        let target = bank.join(STATE_NAME);
        let sha = copy_verified(&source, &target, None).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"archive bytes");
        assert_eq!(sha.len(), 64);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&bank).unwrap().count(), 1);
        let err = copy_verified(&source, &target, Some("00")).unwrap_err();
        assert!(format!("{err:#}").contains("changed while it was copied"));
        assert_eq!(std::fs::read_dir(&bank).unwrap().count(), 1);
    }
}
