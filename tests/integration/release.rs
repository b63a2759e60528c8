//! The release scripts: `scripts/vib.sh` packs a VIB that independent readers accept (binutils
//! `ar`, Python's XML and tar readers, recomputed checksums, via `scripts/check-vib.py`, and GNU
//! tar here), byte for byte the same twice, and a damaged VIB is refused; `scripts/demo.sh` runs
//! a given binary and fails when a step exits other than expected. `scripts/release.sh` itself
//! (a release build) is run by `.ci/run`. Needs ar, python3 and GNU tar (ignored otherwise, see
//! docs/testing.md).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::testenv::{outcome, require, Outcome};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// Fails the test unless the independent readers and the scripts' tools are here.
fn require_tools() {
    for tool in ["ar", "python3", "tar", "sha1sum"] {
        require(tool);
    }
}

fn pack(binary: &Path, output: &Path) -> Outcome {
    pack_with(binary, output, None)
}

/// Packs with the files of `extra` added to the payload (`VIB_EXTRA_TREE`).
fn pack_with(binary: &Path, output: &Path, extra: Option<&Path>) -> Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg(script("vib.sh"))
        .arg(binary)
        .args(["1.2.3-1"])
        .arg(output)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("VIB_EXTRA_TREE");
    if let Some(extra) = extra {
        cmd.env("VIB_EXTRA_TREE", extra);
    }
    outcome(cmd.output().expect("run vib.sh"))
}

fn check(vib: &Path, binary: &Path) -> Outcome {
    outcome(
        Command::new("python3")
            .arg(script("check-vib.py"))
            .arg(vib)
            .arg(binary)
            .output()
            .expect("run check-vib.py"),
    )
}

/// `outcome` is exit 1 with `needle` on stderr.
#[track_caller]
fn fails_saying(outcome: &Outcome, needle: &str) {
    assert_eq!(outcome.code, 1, "{outcome:?}");
    assert!(outcome.stderr.contains(needle), "{outcome:?}");
}

fn fake_binary(dir: &Path) -> PathBuf {
    let binary = dir.join("statectl");
    fs::write(
        &binary,
        b"\x7fELF not really a binary, but bytes to carry\n",
    )
    .unwrap();
    binary
}

/// A temp dir holding a fake binary and `a.vib` packed from it (the tools required).
fn packed() -> (tempfile::TempDir, PathBuf, PathBuf) {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let binary = fake_binary(dir.path());
    let vib = dir.path().join("a.vib");
    pack(&binary, &vib).ok();
    (dir, binary, vib)
}

#[test]
#[ignore = "needs ar and python3 (.ci/run installs them)"]
fn vib_reads_back_with_independent_readers_and_is_reproducible() {
    let (dir, binary, first) = packed();
    let second = dir.path().join("b.vib");
    pack(&binary, &second).ok();
    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());
    let checked = check(&first, &binary).ok();
    assert_eq!(
        checked.stdout.matches("check-vib: ok:").count(),
        4,
        "{checked:?}"
    );

    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("ar p '{}' statectl | tar -tzvf -", first.display()))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/init.d/",
            "etc/init.d/statectl",
            "opt/",
            "opt/statectl/",
            "opt/statectl/bin/",
            "opt/statectl/bin/statectl"
        ]
    );
    assert!(listing.contains("-rwxr-xr-x 0/0"), "{listing}");
    assert!(
        checked
            .stdout
            .contains("check-vib: files: etc/init.d/statectl opt/statectl/bin/statectl\n"),
        "{checked:?}"
    );
}

#[test]
#[ignore = "needs ar and python3 (.ci/run installs them)"]
fn a_vib_shipping_a_file_outside_the_community_paths_is_refused() {
    let (dir, binary, _) = packed();
    for (extra, refused) in [
        ("sbin/x", "sbin"),
        ("bin/backup.sh", "bin"),
        ("etc/rc.local.d/local.sh", "etc/rc.local.d"),
        ("etc/vmware/esx.conf", "etc/vmware/esx.conf"),
    ] {
        let tree = dir.path().join("extra");
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(tree.join(extra).parent().unwrap()).unwrap();
        fs::write(tree.join(extra), b"not ours to ship\n").unwrap();
        let vib = dir.path().join("bad.vib");
        pack_with(&binary, &vib, Some(&tree)).ok();
        let out = check(&vib, &binary);
        assert!(
            out.stdout.contains(extra),
            "the listing names {extra}: {out:?}"
        );
        fails_saying(
            &out,
            &format!("payload entry `{refused}` is outside the paths a community VIB may ship"),
        );
    }
    // A file on a community path passes.
    let tree = dir.path().join("fine");
    fs::create_dir_all(tree.join("etc/vmware/firewall")).unwrap();
    fs::write(tree.join("etc/vmware/firewall/x.xml"), b"<ConfigRoot/>\n").unwrap();
    let vib = dir.path().join("fine.vib");
    pack_with(&binary, &vib, Some(&tree)).ok();
    check(&vib, &binary).ok();
}

#[test]
#[ignore = "needs ar and python3 (.ci/run installs them)"]
fn damaged_vib_is_refused_by_the_checker() {
    let (dir, binary, vib) = packed();
    let mut bytes = fs::read(&vib).unwrap();
    // The descriptor records the payload's size and sha-256: change one byte of the payload.
    let last = bytes.len() - 30;
    bytes[last] ^= 0xff;
    let damaged = dir.path().join("damaged.vib");
    fs::write(&damaged, &bytes).unwrap();
    let refused = check(&damaged, &binary);
    fails_saying(&refused, "check-vib: FAILED: payload `statectl`");

    let other = dir.path().join("other");
    fs::write(&other, b"another binary").unwrap();
    let refused = check(&vib, &other);
    fails_saying(&refused, "differs from");
}

#[test]
#[ignore = "needs ar and python3 (.ci/run installs them)"]
fn vib_sh_refuses_a_missing_binary_and_a_bad_version() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.vib");
    let missing = pack(&dir.path().join("nope"), &out);
    fails_saying(&missing, "no binary at");
    let bad = outcome(
        Command::new("bash")
            .arg(script("vib.sh"))
            .arg(fake_binary(dir.path()))
            .args(["1.0<x>", "x.vib"])
            .output()
            .unwrap(),
    );
    fails_saying(&bad, "must be letters");
    assert!(!out.exists());
}

/// Runs the demo with `binary`, then removes the demo host it kept.
fn demo(binary: &Path) -> Outcome {
    let ran = outcome(
        Command::new("bash")
            .arg(script("demo.sh"))
            .env("STATECTL_BIN", binary)
            .output()
            .expect("run demo.sh"),
    );
    let host = ran
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("demo host: "));
    fs::remove_dir_all(host.expect("the demo names its host")).unwrap();
    ran
}

#[test]
fn demo_runs_every_step_with_the_given_binary() {
    let done = demo(Path::new(env!("CARGO_BIN_EXE_statectl"))).ok();
    for step in [
        "status",
        "backup -v",
        "diff",
        "backup --json",
        "verify",
        "bank status",
    ] {
        assert!(
            done.stdout.contains(&format!("$ statectl {step}\n")),
            "{done:?}"
        );
    }
    assert!(done.stdout.contains("demo host kept at"), "{done:?}");
    // Exit 3 says what it means where the demo shows it.
    let pending = "(exit 3: changes are pending, the next backup saves them)";
    assert!(done.stdout.contains(pending), "{done:?}");
}

#[test]
fn demo_fails_when_a_step_exits_otherwise_than_expected() {
    let dir = tempfile::tempdir().unwrap();
    // A binary whose `verify` fails: every other step behaves as the real one.
    let broken = dir.path().join("statectl");
    fs::write(
        &broken,
        format!(
            "#!/bin/sh\n[ \"$1\" = verify ] && exit 1\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_statectl")
        ),
    )
    .unwrap();
    fs::set_permissions(&broken, fs::Permissions::from_mode(0o755)).unwrap();
    let failed = demo(&broken);
    fails_saying(&failed, "demo: `statectl verify` exited 1, expected 0");
    assert!(failed.stdout.contains("$ statectl list -l"), "{failed:?}");
    assert!(
        !failed.stdout.contains("$ statectl bank status"),
        "{failed:?}"
    );
}
