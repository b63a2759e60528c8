//! Fuzz target: the layout selector and the encrypted layout. The first byte picks which members
//! the outer tar holds and in which order (`local.tgz`, `local.tgz.ve`, `encryption.info`,
//! `statectl.json`); the next two say where the rest splits into a key store and an envelope.
//! With bit 7 set, both start as a valid sealed pair (made once per process) and the fuzz bytes
//! are XORed over them (the envelope at a fuzzed offset), so mutations get past the magic to the
//! header attributes, the footers, the key checks and the tag.
#![no_main]

use std::io::{Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use statectl::archive::envelope::{seal, Encryption};
use statectl::archive::{read_archive_stream, CheckOnly, Limits};

const KEYSTORE: &str = ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"NONE\"\n\
ConfigEncData = \"keyId=q83vASNFZ4mrze8BI0VniQ%3d%3d:data1=EjRWeJq83vASNFZ4mrze8A%3d%3d:\
data2=ESIzRFVmd4iZqrvM3e7/AA%3d%3d:version=1\"\n";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder.append_data(&mut header, name, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A small plain `local.tgz` and its sealed envelope under [`KEYSTORE`].
fn valid_pair() -> &'static (Vec<u8>, Vec<u8>) {
    static PAIR: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let local = gzip(&tar_of(&[("etc/hosts", b"127.0.0.1 localhost\n")]));
        let encryption = Encryption::from_keystore(KEYSTORE.as_bytes().to_vec()).unwrap();
        let mut sealed = Vec::new();
        seal::seal(&encryption, local.as_slice(), local.len() as u64)
            .unwrap()
            .read_to_end(&mut sealed)
            .unwrap();
        (local, sealed)
    })
}

fn xor_into(base: &[u8], offset: usize, noise: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for (i, byte) in noise.iter().enumerate() {
        if let Some(slot) = out.get_mut(offset + i) {
            *slot ^= byte;
        } else {
            out.push(*byte);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (split, rest) = match rest {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize % (rest.len() + 1), rest),
        _ => (0, rest),
    };
    let (keystore_bytes, envelope_bytes) = rest.split_at(split);
    let (local, sealed) = valid_pair();
    let (keystore, envelope) = if flags & 0x80 != 0 {
        let (offset, noise) = match envelope_bytes {
            [a, b, noise @ ..] => (u16::from_le_bytes([*a, *b]) as usize, noise),
            _ => (0, envelope_bytes),
        };
        (
            xor_into(KEYSTORE.as_bytes(), 0, keystore_bytes),
            xor_into(sealed, offset % sealed.len(), noise),
        )
    } else {
        (keystore_bytes.to_vec(), envelope_bytes.to_vec())
    };
    let manifest = br#"{"format":1,"host":"fuzz","build":"","files":[]}"#;
    let mut members: Vec<(&str, &[u8])> = Vec::new();
    if flags & 0x10 == 0 {
        members.push(("encryption.info", &keystore));
    }
    if flags & 0x20 == 0 {
        members.push(("local.tgz.ve", &envelope));
    }
    if flags & 0x04 != 0 {
        members.push(("local.tgz", local));
    }
    if flags & 0x08 != 0 {
        members.push(("statectl.json", manifest));
    }
    let count = members.len().max(1);
    members.rotate_left((flags & 0x03) as usize % count);
    if flags & 0x40 != 0 {
        members.reverse();
    }
    let archive = gzip(&tar_of(&members));
    let limits = Limits {
        max_expanded: 8 << 20,
        max_entries: 1_000,
        max_header: 64 << 10,
    };
    let path = std::path::Path::new("fuzz.tgz");
    let _ = read_archive_stream(archive.as_slice(), path, &limits, &mut CheckOnly);
});
