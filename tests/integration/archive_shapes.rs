//! Archive shapes and refusals beyond the first acceptance list: `tar -C dir -czf x .` with its
//! `./` top entry, multi-member gzip layers, trailing data, `pack` output read by other tools,
//! and `passwd` refusing a bad user name or a busy bank lock without touching the archive.
//! Each of the first three once went wrong (refused, or files silently dropped).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::testenv::{gzip, require, sh, tar_of, tree, Outcome, TestEnv};

/// `bytes` gzip'd as two members split mid-stream, the way `cat a.gz b.gz` or bgzip make them.
fn two_members(bytes: &[u8]) -> Vec<u8> {
    let (a, b) = bytes.split_at(bytes.len() / 2 + 100);
    let mut out = gzip(a);
    out.extend(gzip(b));
    out
}

fn paths(listed: &serde_json::Value) -> Vec<String> {
    let files = listed.as_array().unwrap().iter();
    files
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn one_error_line(out: &Outcome, code: i32) {
    assert_eq!(
        out.code, code,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("statectl: error: "),
        "{}",
        out.stderr
    );
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn tar_of_dot_with_its_top_directory_entry_lists_verifies_and_extracts() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let src = env.dir.path().join("src");
    env.run(&["extract", "--to", src.to_str().unwrap()]).ok();
    require("busybox");
    for tool in ["tar", "busybox tar"] {
        let script = format!(
            "{tool} -C src -czf local.tgz . && {tool} -czf dot.tgz local.tgz && rm local.tgz"
        );
        sh(env.dir.path(), &script);
        let listing = sh(
            env.dir.path(),
            &format!("{tool} -xzOf dot.tgz | {tool} -tzf -"),
        );
        assert!(listing.lines().any(|l| l == "./"), "{tool}: {listing}");
        let archive = env.dir.path().join("dot.tgz");
        let archive = archive.to_str().unwrap();
        env.run(&["verify", archive]).ok();
        let listed = env.run(&["list", archive, "--json"]).ok().json();
        assert!(paths(&listed).contains(&"etc/shadow".to_string()), "{tool}");
        let out = env.dir.path().join(format!("out-{}", tool.len()));
        env.run(&["extract", archive, "--to", out.to_str().unwrap()])
            .ok();
        // The `./` entry (mode 0755 or so) must not loosen the private directory.
        assert_eq!(fs::metadata(&out).unwrap().mode() & 0o777, 0o700, "{tool}");
        assert_eq!(tree(&out), tree(&src), "{tool}");
    }
}

#[test]
fn multi_member_gzip_layers_are_read_to_the_end_and_kept_by_passwd() {
    let env = TestEnv::new();
    let shadow = b"root:$6$a$b:19000:0:99999:7:::\n".as_slice();
    let hosts = vec![b'h'; 3000];
    let inner = tar_of(&[
        ("etc/shadow", shadow, 0o1400),
        ("etc/hosts", &hosts, 0o1644),
        ("etc/ssh/sshd_config", b"PermitRootLogin no\n", 0o1644),
    ]);
    let outer = tar_of(&[("local.tgz", &two_members(&inner), 0o644)]);
    let archive = env.dir.path().join("multi.tgz");
    fs::write(&archive, two_members(&outer)).unwrap();
    let archive = archive.to_str().unwrap();
    sh(env.dir.path(), "gzip -t multi.tgz");
    let out = env.run(&["verify", archive]).ok();
    assert!(!out.stdout.contains("trailing"), "{}", out.stdout);
    let listed = env.run(&["list", archive, "--json"]).ok().json();
    assert_eq!(
        paths(&listed),
        ["etc/shadow", "etc/hosts", "etc/ssh/sshd_config"]
    );
    env.run(&["passwd", "root", "--clear", "--archive", archive])
        .ok();
    let dir = env.dir.path().join("after");
    env.run(&["extract", archive, "--to", dir.to_str().unwrap()])
        .ok();
    assert_eq!(fs::read(dir.join("etc/hosts")).unwrap(), hosts);
    assert_eq!(
        fs::read(dir.join("etc/shadow")).unwrap(),
        b"root::19000:0:99999:7:::\n"
    );
    assert!(dir.join("etc/ssh/sshd_config").exists());
}

#[test]
fn trailing_data_is_a_warning_but_a_bad_extra_member_is_an_error() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let good = fs::read(env.state("bootbank")).unwrap();
    let trailing = env.dir.path().join("trailing.tgz");
    fs::write(&trailing, [&good[..], b"\0\0padding"].concat()).unwrap();
    let out = env.run(&["verify", trailing.to_str().unwrap()]).ok();
    assert!(
        out.stdout
            .contains("warning: state.tgz: 9 bytes of trailing data"),
        "{}",
        out.stdout
    );
    let report = env
        .run(&["verify", trailing.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(report["problems"][0]["level"], "warning", "{report}");
    let bad = env.dir.path().join("bad-member.tgz");
    fs::write(&bad, [&good[..], b"\x1f\x8bnot a gzip member"].concat()).unwrap();
    let out = env.run(&["verify", bad.to_str().unwrap()]);
    one_error_line(&out, 1);
    assert!(out.stderr.contains("bad-member.tgz"), "{}", out.stderr);
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn pack_output_is_read_by_gzip_gnu_tar_and_busybox() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let dir = env.dir.path().join("t");
    env.run(&["extract", "--to", dir.to_str().unwrap()]).ok();
    let output = env.dir.path().join("packed.tgz");
    env.run(&[
        "pack",
        dir.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
    .ok();
    sh(env.dir.path(), "gzip -t packed.tgz");
    require("busybox");
    for tool in ["tar", "busybox tar"] {
        let outer = sh(env.dir.path(), &format!("{tool} -tzf packed.tgz"));
        assert_eq!(outer.lines().next(), Some("local.tgz"), "{tool}: {outer}");
        let inner = sh(
            env.dir.path(),
            &format!("{tool} -xzOf packed.tgz local.tgz | {tool} -tzvf -"),
        );
        assert!(inner.contains("etc/shadow"), "{tool}: {inner}");
        assert!(
            inner.contains("-r-------T"),
            "{tool} lost the sticky bit: {inner}"
        );
    }
}

#[test]
fn passwd_refuses_a_bad_user_name_and_a_busy_lock_leaving_the_archive_alone() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let before = fs::read(env.state("bootbank")).unwrap();
    // `root:$6$salt$hash` once matched root's line and rewrote its third field (exit 0).
    for user in ["root:$6$salt$hash", "root:x", ""] {
        one_error_line(&env.run(&["passwd", user, "--clear"]), 1);
        assert_eq!(fs::read(env.state("bootbank")).unwrap(), before, "{user}");
    }
    let bank = env.bank("bootbank");
    let _held =
        statectl::lock::lock_banks(&env.run_dir, &[bank.as_path()], Duration::ZERO).unwrap();
    let out = env.run(&["passwd", "root", "--clear", "--wait", "0"]);
    one_error_line(&out, 4);
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), before);
}

#[test]
fn extract_with_force_never_writes_through_symlinks_in_the_directory() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let victim = env.dir.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("hosts"), "precious\n").unwrap();
    // A symlinked parent: refused, nothing lands in the target of the link.
    let linked_dir = env.dir.path().join("d1");
    fs::create_dir(&linked_dir).unwrap();
    std::os::unix::fs::symlink(&victim, linked_dir.join("etc")).unwrap();
    let out = env.run(&["extract", "--to", linked_dir.to_str().unwrap(), "--force"]);
    one_error_line(&out, 1);
    assert!(out.stderr.contains("symlink"), "{}", out.stderr);
    // A symlinked file: replaced by the archived file, its target untouched.
    let linked_file = env.dir.path().join("d2");
    fs::create_dir_all(linked_file.join("etc")).unwrap();
    std::os::unix::fs::symlink(victim.join("hosts"), linked_file.join("etc/hosts")).unwrap();
    env.run(&["extract", "--to", linked_file.to_str().unwrap(), "--force"])
        .ok();
    assert!(fs::symlink_metadata(linked_file.join("etc/hosts"))
        .unwrap()
        .is_file());
    assert_eq!(
        fs::read(linked_file.join("etc/hosts")).unwrap(),
        env.read("etc/hosts")
    );
    let names: Vec<_> = fs::read_dir(&victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hosts"]);
    assert_eq!(
        fs::read_to_string(victim.join("hosts")).unwrap(),
        "precious\n"
    );
}
