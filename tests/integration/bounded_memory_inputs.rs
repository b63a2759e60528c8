//! Builders of the hostile archive classes of [`crate::bounded_memory`], built in memory through a
//! fast gzip stream so that even the 490 MB class never exists uncompressed.

use tar::{Builder, EntryType, Header};

use flate2::{write::GzEncoder, Compression};

use crate::testenv::{gzip, MTIME};

const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub fn header(kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME as u64);
    header
}

/// A tar builder over a fast gzip stream, so large classes never exist uncompressed.
pub fn gz_tar() -> Builder<GzEncoder<Vec<u8>>> {
    Builder::new(GzEncoder::new(Vec::new(), Compression::fast()))
}

pub fn finish(builder: Builder<GzEncoder<Vec<u8>>>) -> Vec<u8> {
    builder.into_inner().unwrap().finish().unwrap()
}

pub fn add(builder: &mut Builder<GzEncoder<Vec<u8>>>, name: &str, kind: EntryType, data: &[u8]) {
    let mut head = header(kind, data.len() as u64);
    builder.append_data(&mut head, name, data).unwrap();
}

/// `state.tgz` of outer members `(name, bytes)`.
pub fn outer(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = gz_tar();
    for (name, data) in members {
        add(&mut builder, name, EntryType::Regular, data);
    }
    finish(builder)
}

/// A manifest listing empty files `paths`, with `host` as host name.
pub fn manifest(paths: &[String], host: &str) -> Vec<u8> {
    let files: Vec<String> = paths
        .iter()
        .map(|p| {
            format!(
                r#"{{"path":"{p}","sha256":"{EMPTY_SHA}","size":0,"mode":"0644","uid":0,"gid":0,"mtime":{MTIME}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"format":1,"host":"{host}","build":"","files":[{}]}}"#,
        files.join(",")
    )
    .into_bytes()
}

/// `count` empty files in 500 directories, with a matching manifest; `tail` adds entries last.
pub fn many_entries(count: usize, tail: &[(&str, EntryType)]) -> Vec<u8> {
    let paths: Vec<String> = (0..count)
        .map(|i| format!("etc/d{:03}/f{i:06}", i % 500))
        .collect();
    let mut builder = gz_tar();
    for path in &paths {
        add(&mut builder, path, EntryType::Regular, b"");
    }
    for (name, kind) in tail {
        add(&mut builder, name, *kind, b"");
    }
    let inner = finish(builder);
    outer(&[
        ("local.tgz", &inner),
        ("statectl.json", &manifest(&paths, "esx01")),
    ])
}

/// `count` files whose names are 60 KB long (each one GNU long-name header under 64 KiB).
pub fn long_names(count: usize) -> Vec<u8> {
    let mut builder = gz_tar();
    for i in 0..count {
        let name = format!("etc/{i:05}{}", "x".repeat(60_000));
        add(&mut builder, &name, EntryType::Regular, b"");
    }
    let inner = finish(builder);
    outer(&[("local.tgz", &inner)])
}

/// A state.tgz whose local.tgz holds `entries` `(name, kind)`, no manifest.
pub fn small(entries: &[(&str, EntryType)]) -> Vec<u8> {
    let mut builder = gz_tar();
    for (name, kind) in entries {
        add(&mut builder, name, *kind, b"x");
    }
    let inner = finish(builder);
    outer(&[("local.tgz", &inner)])
}

/// A PAX 0.1 sparse member (`tar --sparse --format=posix`): a regular entry whose PAX
/// records carry the map.
pub fn pax_sparse() -> Vec<u8> {
    let mut builder = gz_tar();
    add(&mut builder, "etc/benign", EntryType::Regular, b"x");
    builder
        .append_pax_extensions([
            ("GNU.sparse.size", &b"3145728"[..]),
            ("GNU.sparse.map", &b"0,1024"[..]),
        ])
        .unwrap();
    add(&mut builder, "etc/sparse", EntryType::Regular, &[1u8; 1024]);
    let inner = finish(builder);
    outer(&[("local.tgz", &inner)])
}

/// A gzip layer of two members (what `cat a.gz b.gz` or pigz make), splitting `bytes`.
pub fn two_members(bytes: &[u8]) -> Vec<u8> {
    let cut = bytes.len() / 2;
    let mut both = gzip(&bytes[..cut]);
    both.extend(gzip(&bytes[cut..]));
    both
}

/// A one-file archive whose file has `mode`.
pub fn one_file(mode: u32) -> Vec<u8> {
    let inner = gzip(&crate::testenv::tar_of(&[(
        "etc/tool",
        b"#!/bin/sh\n",
        mode,
    )]));
    gzip(&crate::testenv::tar_of(&[("local.tgz", &inner, 0o600)]))
}
