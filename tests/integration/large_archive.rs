//! Archives larger than one parallel-deflate block (several 256 KiB blocks in `local.tgz`): GNU
//! gzip and busybox read them back exactly, and two hosts with the same files give the same bytes.

use std::fs;

use crate::testenv::{require, sh, TestEnv};

/// ~1.5 MiB of varied config-like text.
fn big_text() -> String {
    let mut text = String::new();
    let mut n: u64 = 7;
    while text.len() < 1_500_000 {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!(
            "<option id=\"{}\" value=\"{:x}\"/>\n",
            n % 9973,
            n >> 40
        ));
    }
    text
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn multi_block_archive_is_read_by_gzip_and_busybox_and_is_deterministic() {
    let text = big_text();
    let make = || {
        let env = TestEnv::esxi();
        env.flagged("etc/vmware/hostd/big.xml", &text);
        env.run(&["backup", "-q"]).ok();
        env
    };
    let (a, b) = (make(), make());
    let bytes = fs::read(a.state("bootbank")).unwrap();
    assert_eq!(bytes, fs::read(b.state("bootbank")).unwrap());
    let dir = a.dir.path();
    require("busybox");
    let tar = "busybox tar";
    sh(
        dir,
        &format!(
            "mkdir x && cd x && {tar} -xzf '{}' && gzip -t local.tgz && {tar} -xzf local.tgz",
            a.state("bootbank").display()
        ),
    );
    let back = fs::read_to_string(dir.join("x/etc/vmware/hostd/big.xml")).unwrap();
    assert!(back == text, "big.xml differs after extraction");
}
