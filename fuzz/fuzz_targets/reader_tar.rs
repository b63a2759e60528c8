//! Fuzz target: any bytes as the inner tar stream, wrapped in the real layout (gzip'd, inside
//! an outer gzip'd tar as `local.tgz`), so mutations reach the tar and header-extension parsing
//! instead of dying at the gzip CRC. The visitor reads part of every entry, as extract does.
#![no_main]

use std::io::{Read, Write};

use libfuzzer_sys::fuzz_target;
use statectl::archive::{read_archive_stream, InnerEntry, Limits, Visitor};

struct ReadSome;

impl Visitor for ReadSome {
    fn entry(&mut self, _entry: &InnerEntry, data: &mut dyn Read) -> anyhow::Result<()> {
        let mut buf = [0u8; 700];
        let _ = data.read(&mut buf)?;
        Ok(())
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let inner = gzip(data);
    let mut outer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(inner.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    outer
        .append_data(&mut header, "local.tgz", inner.as_slice())
        .unwrap();
    let archive = gzip(&outer.into_inner().unwrap());
    let limits = Limits {
        max_expanded: 8 << 20,
        max_entries: 1_000,
        max_header: 64 << 10,
    };
    let path = std::path::Path::new("fuzz.tgz");
    let _ = read_archive_stream(archive.as_slice(), path, &limits, &mut ReadSome);
});
