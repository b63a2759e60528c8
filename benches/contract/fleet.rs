//! The fleet section: `drift` and `history` over a copy store of 100 and of 1,000 synthetic
//! hosts x 24 copies, each with its wall time and peak RSS; targets: under 64 MiB at both
//! sizes, and the 1,000-host run at most 12x the 100-host one (cost linear in hosts).
//!
//! The store is generated fast: 23 shared older copies (one small bundle each, hard-linked
//! into every host's directory) and one newest copy per host with that host's identity in its
//! `esx.conf` (so drift compares 1,000 distinct bundles and agrees, as hosts set up alike do).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::measure::{median, ms};
use crate::{info, judge, statectl, Row};

const COPIES: usize = 24;
/// 2026-11-30T00:53:20Z; copies an hour apart.
const T0: i64 = 1_796_000_000;
const SIZES: [usize; 2] = [100, 1_000];

/// Rows of the fleet section.
pub fn fleet(base: &Path, rows: &mut Vec<Row>) {
    let templates = base.join("fleet-templates");
    std::fs::create_dir_all(&templates).expect("template dir");
    let shared: Vec<PathBuf> = (0..COPIES - 1)
        .map(|c| {
            let path = templates.join(format!("copy-{c:02}.tgz"));
            std::fs::write(&path, bundle(0, c)).expect("template bundle");
            path
        })
        .collect();
    let mut walls = Vec::new();
    for hosts in SIZES {
        let store = base.join(format!("fleet-{hosts}"));
        lay_out_store(&store, hosts, &shared);
        let run = base.join("fleet-run");
        let store_arg = store.to_str().expect("utf-8 path");
        check_store(base, &run, store_arg, hosts);
        let mut measured = Vec::new();
        for (name, args) in [
            ("drift", vec!["--json", "drift", store_arg]),
            ("history", vec!["--json", "history", store_arg]),
        ] {
            let runs = if hosts >= 1_000 { 1 } else { 3 };
            let result = median(runs, || {}, || statectl(base, &run, &args));
            let rss = result.max_rss_kib as f64 / 1024.0;
            rows.push(info(
                format!("{name}, {hosts} hosts x {COPIES} copies"),
                format!("{:.0} ms", ms(result.wall)),
            ));
            rows.push(judge(
                &format!("  {name} peak RSS, {hosts} hosts"),
                format!("{rss:.1} MiB"),
                "<= 64 MiB",
                rss <= 64.0,
            ));
            measured.push(ms(result.wall));
        }
        walls.push(measured);
        let _ = std::fs::remove_dir_all(&store);
    }
    for (i, name) in ["drift", "history"].iter().enumerate() {
        let ratio = walls[1][i] / walls[0][i];
        rows.push(judge(
            &format!("{name} time 1,000 / 100 hosts"),
            format!("{ratio:.2}x"),
            "<= 12x",
            ratio <= 12.0,
        ));
    }
}

/// The store reads as generated: every host and copy listed, no warning, no drift (a store
/// the reader refused would be measured as fast and wrong). Only small outputs are parsed
/// here: what this process holds counts in its children's peak RSS (they start as its vfork).
fn check_store(base: &Path, run: &Path, store: &str, hosts: usize) {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = statectl(base, run, args).output().expect("run statectl");
        serde_json::from_slice(&out.stdout).expect("JSON report")
    };
    let drift = json(&["--json", "drift", store]);
    assert_eq!(drift["warnings"], serde_json::json!([]), "drift");
    assert_eq!(drift["drift"], serde_json::json!([]), "drift");
    assert_eq!(
        drift["hosts"].as_array().map(Vec::len),
        Some(hosts),
        "drift"
    );
    let one = json(&["--json", "history", store, "--host", "uuid-0000"]);
    let copies = one["hosts"][0]["copies"].as_array().map(Vec::len);
    assert_eq!(copies, Some(COPIES), "history");
    // Every copy of every host read without a warning (warnings go to stderr without -q).
    let all = std::process::Command::new(crate::statectl_bin())
        .env("STATECTL_RUN_DIR", run)
        .args(["history", store])
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run statectl");
    assert!(
        all.status.success() && all.stderr.is_empty(),
        "history warned"
    );
}

/// `hosts` host directories, each with the shared copies hard-linked and its own newest one.
fn lay_out_store(store: &Path, hosts: usize, shared: &[PathBuf]) {
    let _ = std::fs::remove_dir_all(store);
    for h in 0..hosts {
        let dir = store.join(format!("uuid-{h:04}"));
        std::fs::create_dir_all(&dir).expect("host dir");
        for (c, template) in shared.iter().enumerate() {
            std::fs::hard_link(template, dir.join(name(h, c))).expect("hard link");
        }
        let newest = COPIES - 1;
        std::fs::write(dir.join(name(h, newest)), bundle(h, newest)).expect("bundle");
    }
}

fn name(host: usize, copy: usize) -> String {
    let stamp = statectl::clock::utc_stamp(T0 + copy as i64 * 3600);
    format!("configBundle-esx{host:04}-{stamp}.tgz")
}

/// A bundle of host `host`'s copy `copy`: about 30 small config files, its identity in
/// `esx.conf`, and one file that changes with every copy.
fn bundle(host: usize, copy: usize) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = (0..28)
        .map(|i| {
            let body = format!("<config><item id=\"{i}\" value=\"setting\"/></config>\n");
            (
                format!("etc/vmware/hostd/conf{i:02}.xml"),
                body.repeat(8).into_bytes(),
            )
        })
        .collect();
    let esx_conf = format!(
        "/adv/Misc/HostName = \"esx{host:04}\"\n/system/uuid = \"uuid-{host:04}\"\n\
         /adv/Net/ManagementAddr = \"10.0.{}.{}\"\n/adv/Syslog/global/logHost = \"udp://log:514\"\n\
         /net/pnic/child[0000]/mac = \"00:50:56:00:{:02x}:{:02x}\"\n",
        host / 250,
        host % 250,
        host / 256,
        host % 256
    );
    files.push(("etc/vmware/esx.conf".into(), esx_conf.into_bytes()));
    files.push((
        "etc/vmware/round.txt".into(),
        format!("{copy}\n").into_bytes(),
    ));
    files.sort();
    let local = gzip_tar(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let state = gzip_tar([("local.tgz", local.as_slice())].into_iter());
    let manifest =
        format!("RELEASELEVEL=VMware ESXi 7.0.3\nUUID=uuid-{host:04}\nKERNELOPTS=\nUSEROPTS=\n");
    gzip_tar(
        [
            ("Manifest.txt", manifest.as_bytes()),
            ("state.tgz", state.as_slice()),
        ]
        .into_iter(),
    )
}

fn gzip_tar<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(T0 as u64);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data)
            .expect("member");
    }
    let mut gz = builder.into_inner().expect("tar");
    gz.flush().expect("flush");
    gz.finish().expect("gzip")
}
