//! The encrypted layout (ESXi 7.0 U2+): decrypt+verify throughput against the plain read of the
//! same archive, and the no-change backup of an encrypted host against a plain one. The
//! encrypted archives are the plain ones with `local.tgz` sealed by statectl's own encoder.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use statectl::archive::envelope::{seal, Encryption};

use super::measure::{median, ms};
use super::{info, statectl, Row, Sizes};

const KEYSTORE: &str = ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"NONE\"\n\
    ConfigEncData = \"keyId=q83vASNFZ4mrze8BI0VniQ%3d%3d:data1=EjRWeJq83vASNFZ4mrze8A%3d%3d:\
    data2=ESIzRFVmd4iZqrvM3e7/AA%3d%3d:version=1\"\n";

/// Rewrites the bank's plain `state.tgz` in the encrypted layout (no manifest, as ESXi).
fn encrypt_in_place(state: &Path) {
    let mut local = tempfile::tempfile().expect("temp file");
    let file = File::open(state).expect("state.tgz");
    let mut outer = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in outer.entries().expect("outer tar") {
        let mut entry = entry.expect("outer entry");
        if entry.path().expect("name").to_string_lossy() == "local.tgz" {
            std::io::copy(&mut entry, &mut local).expect("copy local.tgz");
        }
    }
    let len = local.stream_position().expect("size");
    local.rewind().expect("rewind");
    let encryption = Encryption::from_keystore(KEYSTORE.as_bytes().to_vec()).expect("key store");
    let mut sealing = seal::seal(&encryption, local, len).expect("seal");
    let out = File::create(state).expect("rewrite state.tgz");
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = member_header(KEYSTORE.len() as u64);
    builder
        .append_data(&mut header, "encryption.info", KEYSTORE.as_bytes())
        .expect("key store member");
    let mut header = member_header(seal::sealed_len(len));
    builder
        .append_data(&mut header, "local.tgz.ve", &mut sealing as &mut dyn Read)
        .expect("envelope member");
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish");
}

fn member_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Rows: `verify` of the full host's archive plain vs encrypted (throughput of the envelope
/// bytes), then no-change `backup` of the flagged host plain vs encrypted.
pub fn encrypted(base: &Path, sizes: &Sizes, rows: &mut Vec<Row>) {
    let (full, full_run) = (base.join("full"), base.join("full-run"));
    let state = full.join("bootbank/state.tgz");
    let mib = std::fs::metadata(&state).expect("archive").len() as f64 / (1 << 20) as f64;
    let verify = |root: &Path, run: &Path| {
        median(sizes.slow_runs, || {}, || statectl(root, run, &["verify"]))
    };
    let plain = verify(&full, &full_run);
    encrypt_in_place(&state);
    let sealed = verify(&full, &full_run);
    let speed = |wall| mib / (ms(wall) / 1000.0);
    rows.push(info(
        format!("verify, plain {mib:.0} MiB archive"),
        format!("{:.0} ms, {:.0} MiB/s", ms(plain.wall), speed(plain.wall)),
    ));
    rows.push(info(
        "verify, same archive encrypted (decrypt+tag)".into(),
        format!("{:.0} ms, {:.0} MiB/s", ms(sealed.wall), speed(sealed.wall)),
    ));
    rows.push(info(
        "  encrypted / plain verify time, peak RSS".into(),
        format!(
            "{:.2}x, {:.1} MiB",
            ms(sealed.wall) / ms(plain.wall),
            sealed.max_rss_kib as f64 / 1024.0
        ),
    ));
    let (flagged, flagged_run) = (base.join("flagged"), base.join("flagged-run"));
    let no_change = || {
        median(
            sizes.runs,
            || {},
            || statectl(&flagged, &flagged_run, &["backup"]),
        )
    };
    let plain = no_change();
    encrypt_in_place(&flagged.join("bootbank/state.tgz"));
    let sealed = no_change();
    rows.push(info(
        "no-change backup, plain vs encrypted host".into(),
        format!("{:.1} vs {:.1} ms", ms(plain.wall), ms(sealed.wall)),
    ));
}
