//! The boot modules a bank's `boot.cfg` names (`kernel=` and each `modules=` item), where they
//! are inside the bank, and whether a gzip-compressed one decompresses cleanly.
//!
//! Names are as the loader reads them: a leading `/` means the bank's top, `prefix=` (when set)
//! is a directory inside the bank. A name with a `..` component, or one that resolves outside
//! the bank through a link, is refused: statectl never follows `boot.cfg` off the boot media.

use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::BootCfg;
use crate::archive::streams::{describe_io, drain};

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The module names `cfg` makes the loader open: `kernel=` first, then `modules=` in order.
pub fn boot_modules(cfg: &BootCfg) -> Vec<String> {
    let kernel = cfg
        .get("kernel")
        .and_then(|value| value.split_whitespace().next())
        .map(str::to_string);
    kernel.into_iter().chain(cfg.modules()).collect()
}

/// The path of module `name` inside `bank`, or why it may not be opened.
pub fn resolve(bank: &Path, prefix: Option<&str>, name: &str) -> Result<PathBuf, String> {
    let mut path = bank.to_path_buf();
    for part in [prefix.unwrap_or(""), name] {
        let relative = Path::new(part.trim_start_matches('/'));
        for component in relative.components() {
            match component {
                Component::Normal(piece) => path.push(piece),
                Component::CurDir => {}
                _ => return Err(format!("`{name}` leaves the bank (`..` in its path)")),
            }
        }
    }
    if path == bank {
        return Err(format!("`{name}` names no file"));
    }
    match (path.canonicalize(), bank.canonicalize()) {
        (Ok(real), Ok(top)) if !real.starts_with(&top) => Err(format!(
            "`{name}` resolves outside the bank, to `{}`",
            real.display()
        )),
        _ => Ok(path),
    }
}

/// What [`check_file`] found about an existing module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not gzip-compressed; its size.
    Plain(u64),
    /// A gzip stream that decompressed cleanly to its end; compressed and expanded sizes.
    Gzip { size: u64, expanded: u64 },
}

/// Reads module `path`: a gzip stream (by its magic bytes) is decompressed to the end in
/// constant memory, so CRC and length are checked. The error says what is wrong with it.
pub fn check_file(path: &Path) -> Result<Content, String> {
    let (file, meta) = match crate::fs::hostfile::open_nonblocking(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Err("is missing".to_string()),
        Err(err) => return Err(format!("cannot be opened: {err:#}")),
    };
    if !meta.is_file() {
        return Err(format!(
            "is {}, not a regular file",
            crate::fs::hostfile::kind_of(&meta)
        ));
    }
    let size = meta.len();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut magic = [0u8; 2];
    let got =
        read_up_to(&mut reader, &mut magic).map_err(|err| format!("cannot be read: {err}"))?;
    if got < 2 || magic != GZIP_MAGIC {
        return Ok(Content::Plain(size));
    }
    let whole = io::Cursor::new(magic).chain(reader);
    let mut decoder = MultiGzDecoder::new(BufReader::new(whole));
    match drain(&mut decoder) {
        Ok((expanded, _)) => Ok(Content::Gzip { size, expanded }),
        Err(err) => Err(format!(
            "does not decompress cleanly ({}): it is truncated or corrupt",
            describe_io(&err)
        )),
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(got) => filled += got,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn kernel_and_modules_are_listed_without_options() {
        let cfg = BootCfg::parse("kernel=/b.b00\nmodules=/a.gz opt=1 --- /s.v00\n").unwrap();
        assert_eq!(boot_modules(&cfg), ["/b.b00", "/a.gz", "/s.v00"]);
    }

    #[test]
    fn names_stay_inside_the_bank() {
        let bank = tempfile::tempdir().unwrap();
        let top = bank.path();
        assert_eq!(resolve(top, None, "/b.b00").unwrap(), top.join("b.b00"));
        assert_eq!(
            resolve(top, Some("/sub"), "b.b00").unwrap(),
            top.join("sub/b.b00")
        );
        assert!(resolve(top, None, "../etc/passwd").is_err());
        assert!(resolve(top, None, "/").is_err());
        std::os::unix::fs::symlink("/etc", top.join("out")).unwrap();
        assert!(resolve(top, None, "/out/hostname")
            .unwrap_err()
            .contains("outside"));
    }

    #[test]
    fn truncated_gzip_is_found_and_plain_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let packed = gzip(&data);
        let good = dir.path().join("good.v00");
        std::fs::write(&good, &packed).unwrap();
        assert_eq!(
            check_file(&good).unwrap(),
            Content::Gzip {
                size: packed.len() as u64,
                expanded: data.len() as u64
            }
        );
        let cut = dir.path().join("cut.v00");
        std::fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
        assert!(check_file(&cut).unwrap_err().contains("truncated"));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(check_file(&plain).unwrap(), Content::Plain(1));
        assert_eq!(
            check_file(&dir.path().join("none")).unwrap_err(),
            "is missing"
        );
    }
}
