//! `list`, `verify`, `extract`, `pack`, `passwd` (issue 3's acceptance list): archives made the
//! ESXi way by busybox and GNU tar, corrupt and hostile input, the password reset end to end.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::testenv::{gzip, outcome, require, sh, tar_of, tree, Outcome, TestEnv};

fn backed_up() -> TestEnv {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env
}

fn write_bytes(env: &TestEnv, name: &str, bytes: &[u8]) -> String {
    let path = env.dir.path().join(name);
    fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[track_caller]
fn one_error_line(out: &Outcome) {
    assert_eq!(
        out.code, 1,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].starts_with("statectl: error: "), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"));
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn esxi_style_archives_from_busybox_and_gnu_tar_list_verify_and_extract() {
    let env = TestEnv::esxi();
    let files = "etc/hosts etc/passwd etc/shadow etc/vmware/esx.conf";
    require("busybox");
    let recipes = [
        (
            "gnu",
            "tar -czf local.tgz --exclude=./etc/hosts.link ./etc && tar -czf state-gnu.tgz local.tgz && rm local.tgz".to_string(),
        ),
        (
            "busybox",
            format!("busybox tar -czf local.tgz {files} && busybox tar -czf state-busybox.tgz local.tgz && rm local.tgz"),
        ),
    ];
    for (tool, script) in recipes {
        sh(&env.root, &script);
        let archive = env.root.join(format!("state-{tool}.tgz"));
        let archive = archive.to_str().unwrap();
        let listed = env.run(&["list", archive, "--json"]).ok().json();
        let paths: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"etc/vmware/esx.conf"), "{tool}: {paths:?}");
        assert!(
            paths.iter().all(|p| !p.starts_with("./")),
            "{tool}: {paths:?}"
        );
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "etc/shadow")
            .unwrap();
        assert_eq!(entry["mode"], "1400", "{tool}");
        env.run(&["verify", archive]).ok();
        let to = env.dir.path().join(format!("out-{tool}"));
        env.run(&["extract", archive, "--to", to.to_str().unwrap()])
            .ok();
        assert_eq!(
            fs::read(to.join("etc/hosts")).unwrap(),
            env.read("etc/hosts")
        );
        assert_eq!(
            fs::metadata(to.join("etc/shadow")).unwrap().mode() & 0o7777,
            0o1400
        );
        assert_eq!(fs::metadata(&to).unwrap().mode() & 0o777, 0o700);
    }
}

#[test]
fn corrupt_archives_fail_verify_with_one_clear_line() {
    let env = backed_up();
    let good = fs::read(env.state("bootbank")).unwrap();
    let summary = env.run(&["list", "--json"]).ok().json();
    assert!(!summary.as_array().unwrap().is_empty());
    let mut flipped_outer_crc = good.clone();
    let n = flipped_outer_crc.len();
    flipped_outer_crc[n - 6] ^= 0xff; // CRC32 lives in bytes n-8..n-4
    let mut flipped_middle = good.clone();
    flipped_middle[good.len() / 2] ^= 0x55;
    let mut flipped_header = good.clone();
    flipped_header[20] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() * 2 / 3].to_vec()),
        ("flipped-crc", flipped_outer_crc),
        ("flipped-middle", flipped_middle),
        ("flipped-early", flipped_header),
        ("not-gzip", b"this is not a gzip file at all".to_vec()),
        ("empty", Vec::new()),
        ("inner-not-gzip", outer_with_inner(b"plain text, not gzip")),
        ("inner-flipped-crc", {
            let mut inner = gzip(&tar_of(&[("etc/hosts", b"x\n", 0o1644)]));
            let m = inner.len();
            inner[m - 7] ^= 0x10;
            outer_with_inner(&inner)
        }),
    ];
    for (name, bytes) in cases {
        let path = write_bytes(&env, name, &bytes);
        let out = env.run(&["verify", &path]);
        one_error_line(&out);
        assert!(out.stderr.contains(&path), "{name}: {}", out.stderr);
        let json = env.run(&["verify", &path, "--json"]).code(1).json();
        assert_eq!(json["ok"], false, "{name}");
    }
}

fn outer_with_inner(inner: &[u8]) -> Vec<u8> {
    gzip(&tar_of(&[("local.tgz", inner, 0o644)]))
}

/// Runs statectl under GNU `time` and returns its outcome and peak RSS in KiB. Measured by a
/// small parent, not by this test process: a child started with vfork/posix_spawn inherits
/// the high-water RSS of the process that spawned it (Linux keeps the larger at exec), and
/// the test process holds the other tests' data.
pub fn peak_rss_kib(env: &TestEnv, args: &[&str]) -> (Outcome, i64) {
    let report = env.dir.path().join("time.out");
    let inner = env.command(args);
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.arg("-f").arg("%M").arg("-o").arg(&report);
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = outcome(cmd.stdin(std::process::Stdio::null()).output().unwrap());
    let kib = fs::read_to_string(&report).unwrap();
    let kib = kib.lines().last().unwrap().trim().parse().unwrap();
    (out, kib)
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn a_gzip_bomb_and_a_huge_long_name_header_are_refused_in_little_memory() {
    require("/usr/bin/time");
    let env = TestEnv::new();
    // Inner layer: 2 GiB of zeros in one member, gzip'd (about 2 MiB), streamed so the test
    // itself stays small.
    let bomb_inner = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut header = tar::Header::new_ustar();
        header.set_path("etc/bomb").unwrap();
        header.set_size(2 << 30);
        header.set_mode(0o1644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        gz.write_all(header.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..2048 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap()
    };
    let bomb = write_bytes(&env, "bomb.tgz", &outer_with_inner(&bomb_inner));
    let (out, bomb_rss) = peak_rss_kib(&env, &["verify", &bomb]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("expands beyond"), "{}", out.stderr);
    // A GNU long-name header announcing 400 MB of name.
    let long_name = {
        let mut header = tar::Header::new_gnu();
        header.set_path("././@LongLink").unwrap();
        header.set_size(400_000_000);
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend(vec![b'a'; 1 << 20]);
        gzip(&bytes)
    };
    let huge = write_bytes(&env, "longname.tgz", &outer_with_inner(&long_name));
    let (out, name_rss) = peak_rss_kib(&env, &["verify", &huge]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("header extension"), "{}", out.stderr);
    eprintln!("peak RSS: gzip bomb {bomb_rss} KiB, 400 MB long name {name_rss} KiB");
    assert!(
        bomb_rss < 64 * 1024 && name_rss < 64 * 1024,
        "{bomb_rss} / {name_rss} KiB"
    );
}

#[test]
fn max_size_lowers_and_raises_the_expansion_limit() {
    let env = backed_up();
    let archive = env.state("bootbank");
    let archive = archive.to_str().unwrap();
    let out = env.run(&["verify", archive, "--max-size", "100"]);
    one_error_line(&out);
    assert!(out.stderr.contains("--max-size"), "{}", out.stderr);
    env.run(&["verify", archive, "--max-size", "100000000"])
        .ok();
}

#[test]
#[ignore = "needs root (.ci/run runs the suite as root)"]
fn password_reset_clears_only_roots_hash() {
    require("root");
    let env = backed_up();
    env.flagged(
        "etc/shadow",
        "root:$6$old$hash:19000:0:99999:7:::\nadmin:$6$x$y:19000::::::\n",
    );
    env.file("etc/shadow", None, 0o1400);
    env.run(&["backup"]).ok();
    let before = env.dir.path().join("before");
    env.run(&["extract", "--to", before.to_str().unwrap()]).ok();
    env.run(&["passwd", "root", "--clear"]).ok();
    env.run(&["verify"]).ok();
    let after = env.dir.path().join("after");
    env.run(&["extract", "--to", after.to_str().unwrap()]).ok();
    let shadow = fs::read_to_string(after.join("etc/shadow")).unwrap();
    assert_eq!(
        shadow,
        "root::19000:0:99999:7:::\nadmin:$6$x$y:19000::::::\n"
    );
    let (old, new) = (tree(&before), tree(&after));
    assert_eq!(old.len(), new.len());
    for (a, b) in old.iter().zip(&new) {
        if a.0 == "etc/shadow" {
            assert_eq!((a.1, a.2, a.3), (b.1, b.2, b.3), "shadow metadata");
        } else {
            assert_eq!(a, b, "{} changed", a.0);
        }
    }
}

#[test]
#[ignore = "needs openssl (.ci/run installs it)"]
fn password_from_stdin_is_a_sha512_crypt_openssl_reproduces() {
    require("openssl");
    let env = backed_up();
    let mut child = env
        .command(&["passwd", "root", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"N3w-pass word\n")
        .unwrap();
    outcome(child.wait_with_output().unwrap()).ok();
    let out = env.dir.path().join("x");
    env.run(&["extract", "--to", out.to_str().unwrap()]).ok();
    let shadow = fs::read_to_string(out.join("etc/shadow")).unwrap();
    let hash = shadow
        .lines()
        .next()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    let salt = hash.split('$').nth(2).unwrap();
    let expected = sh(
        env.dir.path(),
        &format!("openssl passwd -6 -salt '{salt}' 'N3w-pass word'"),
    );
    assert_eq!(hash, expected.trim());
}

#[test]
fn passwd_refuses_unknown_users_and_missing_shadow_without_touching_the_archive() {
    let env = backed_up();
    let before = fs::read(env.state("bootbank")).unwrap();
    one_error_line(&env.run(&["passwd", "nobody", "--clear"]));
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), before);
    let no_shadow = TestEnv::new();
    no_shadow.flagged("etc/hosts", "x\n");
    no_shadow.run(&["backup"]).ok();
    let kept = fs::read(no_shadow.state("bootbank")).unwrap();
    let out = no_shadow.run(&["passwd", "root", "--clear"]);
    one_error_line(&out);
    assert!(out.stderr.contains("etc/shadow"));
    assert_eq!(fs::read(no_shadow.state("bootbank")).unwrap(), kept);
    env.run(&["passwd", "root"]).code(2);
}

#[test]
fn extract_edit_pack_verify_shows_the_new_hash() {
    let env = backed_up();
    let dir = env.dir.path().join("edit");
    let dir_s = dir.to_str().unwrap();
    env.run(&["extract", "--to", dir_s]).ok();
    let output = env.dir.path().join("new-state.tgz");
    let output_s = output.to_str().unwrap();
    env.run(&["pack", dir_s, "--output", output_s]).ok();
    let original = env.run(&["list", "--json"]).ok().json();
    assert_eq!(
        env.run(&["list", output_s, "--json"]).ok().json(),
        original,
        "extract then pack changed the content"
    );
    fs::write(dir.join("etc/hosts"), "10.1.1.1 esx01\n").unwrap();
    env.run(&["pack", dir_s, "--output", output_s]).ok();
    env.run(&["verify", output_s]).ok();
    assert_eq!(
        fs::metadata(&output).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listed = env.run(&["list", output_s, "--json"]).ok().json();
    let hosts = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "etc/hosts")
        .unwrap()
        .clone();
    let expected = sh(env.dir.path(), "printf '10.1.1.1 esx01\\n' | sha256sum");
    assert_eq!(hosts["sha256"], expected.split_whitespace().next().unwrap());
    assert_eq!(hosts["mode"], "1644");
}

#[test]
fn extract_refuses_a_non_empty_directory_unless_forced() {
    let env = backed_up();
    let dir = env.dir.path().join("busy");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("keep"), "mine").unwrap();
    one_error_line(&env.run(&["extract", "--to", dir.to_str().unwrap()]));
    assert!(!dir.join("etc").exists());
    env.run(&["extract", "--to", dir.to_str().unwrap(), "--force"])
        .ok();
    assert!(dir.join("etc/passwd").exists());
    assert_eq!(fs::read_to_string(dir.join("keep")).unwrap(), "mine");
}

#[test]
fn pack_refuses_symlinks_and_an_output_inside_the_tree() {
    let env = backed_up();
    let dir = env.dir.path().join("t");
    env.run(&["extract", "--to", dir.to_str().unwrap()]).ok();
    let inside = dir.join("state.tgz");
    one_error_line(&env.run(&[
        "pack",
        dir.to_str().unwrap(),
        "--output",
        inside.to_str().unwrap(),
    ]));
    std::os::unix::fs::symlink("/etc/passwd", dir.join("etc/evil")).unwrap();
    let out = env.dir.path().join("o.tgz");
    one_error_line(&env.run(&[
        "pack",
        dir.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]));
    assert!(!out.exists());
}
