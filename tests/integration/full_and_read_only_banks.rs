//! Real faults, not injected ones: the bootbank on a 1 MiB tmpfs in a private mount namespace
//! (`unshare -m`), filled up, then remounted read-only. Each time `backup` exits 1 with a
//! message naming the bank, the archive already there is byte-identical, and no temp file is
//! left. A `restore` into a full filesystem exits 1 and leaves the root exactly as it was.
//! Needs root and `unshare` (ignored otherwise, see docs/testing.md).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::testenv::{require, TestEnv};

/// Runs in the private namespace; writes what it saw into $OUT for the test to check.
const SCRIPT: &str = r#"
set -u
BANK="$ROOT/bootbank"
cp "$BANK/boot.cfg" "$OUT/boot.cfg"
mount -t tmpfs -o size=1m,mode=0755 statectl-bank "$BANK" || exit 90
cp "$OUT/boot.cfg" "$BANK/boot.cfg"
"$STATECTL" --root "$ROOT" backup >/dev/null 2>"$OUT/first.err" || exit 91
cp "$BANK/state.tgz" "$OUT/old.tgz"
dd if=/dev/zero of="$BANK/filler" bs=64k 2>/dev/null
echo "changed" >> "$ROOT/etc/hosts"
"$STATECTL" --root "$ROOT" backup >/dev/null 2>"$OUT/full.err"; echo $? > "$OUT/full.code"
cmp -s "$BANK/state.tgz" "$OUT/old.tgz"; echo $? > "$OUT/full.cmp"
ls -A "$BANK" > "$OUT/full.ls"
rm -f "$BANK/filler"
mount -o remount,ro "$BANK" || exit 92
"$STATECTL" --root "$ROOT" backup >/dev/null 2>"$OUT/ro.err"; echo $? > "$OUT/ro.code"
cmp -s "$BANK/state.tgz" "$OUT/old.tgz"; echo $? > "$OUT/ro.cmp"
ls -A "$BANK" > "$OUT/ro.ls"
"#;

/// Runs `script` in a private mount namespace with statectl's environment for `env` and
/// `$STATECTL`, `$ROOT`, `$OUT` set; asserts it ran to its end.
fn in_namespace(env: &TestEnv, script: &str, out: &Path) {
    let status = env
        .command(&[])
        .get_envs()
        .fold(Command::new("unshare"), |mut cmd, (k, v)| {
            if let Some(v) = v {
                cmd.env(k, v);
            }
            cmd
        })
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("STATECTL", env!("CARGO_BIN_EXE_statectl"))
        .env("ROOT", &env.root)
        .env("OUT", out)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "namespace script failed");
}

/// About 320 KiB of barely compressible text.
fn noise() -> String {
    (0..40_000u32)
        .map(|i| format!("{:08x}", i.wrapping_mul(2_654_435_761)))
        .collect()
}

#[test]
#[ignore = "needs root and unshare (.ci/run runs the suite as root)"]
fn a_full_or_read_only_bank_fails_cleanly_and_loses_nothing() {
    require("root");
    require("unshare");
    let env = TestEnv::esxi();
    // Barely compressible content: the new archive cannot fit.
    env.flagged("etc/vmware/big.xml", &noise());
    let out = env.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    in_namespace(&env, SCRIPT, &out);
    let read = |name: &str| fs::read_to_string(out.join(name)).unwrap();
    for case in ["full", "ro"] {
        assert_eq!(
            read(&format!("{case}.code")).trim(),
            "1",
            "{case}: exit code"
        );
        let err = read(&format!("{case}.err"));
        assert!(err.starts_with("statectl: error: "), "{case}: {err}");
        assert!(
            err.contains("bootbank`"),
            "{case}: message names no bank: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{case}: {err}");
        assert_eq!(
            read(&format!("{case}.cmp")).trim(),
            "0",
            "{case}: archive changed"
        );
        eprintln!("{case} bank: {}", err.trim());
        let listing = read(&format!("{case}.ls"));
        assert!(
            !listing.contains(".statectl-"),
            "{case}: temp left: {listing}"
        );
    }
    // The bank on the real disk was never touched (the tmpfs hid it).
    assert!(!env.state("bootbank").exists());
}

/// `etc` on a 1 MiB tmpfs holding the host's files and about 100 KiB free; the restore needs a
/// new 320 KiB file in a new directory and overwrites `etc/hosts` (staged first).
const RESTORE_SCRIPT: &str = r#"
set -u
cp -a "$ROOT/etc" "$OUT/etc-copy"
mount -t tmpfs -o size=1m,mode=0755 statectl-etc "$ROOT/etc" || exit 90
cp -a "$OUT/etc-copy/." "$ROOT/etc/"
dd if=/dev/zero of="$ROOT/etc/filler" bs=64k 2>/dev/null
truncate -s -100K "$ROOT/etc/filler"
# Every entry with its mode and owner; files and links also with mtime, size and content
# (a directory's mtime moves whenever a temp file comes and goes: not content).
fingerprint() { (cd "$ROOT" && find etc -type d -printf '%p %m %U %G\n' | sort &&
  find etc ! -type d -printf '%p %m %U %G %T@ %s\n' | sort && find etc -type f -exec sha256sum {} + | sort); }
fingerprint > "$OUT/before"
"$STATECTL" --root "$ROOT" restore "$OUT/state.tgz" >/dev/null 2>"$OUT/restore.err"; echo $? > "$OUT/restore.code"
fingerprint > "$OUT/after"
ls -A "$ROOT/var/lib/statectl" > "$OUT/undo.ls" 2>/dev/null || true
"#;

#[test]
#[ignore = "needs root and unshare (.ci/run runs the suite as root)"]
fn a_restore_into_a_full_filesystem_leaves_the_root_unchanged() {
    require("root");
    require("unshare");
    let env = TestEnv::esxi();
    env.flagged("etc/vmware/newdir/big.xml", &noise());
    env.run(&["backup"]).ok();
    let out = env.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    fs::copy(env.state("bootbank"), out.join("state.tgz")).unwrap();
    fs::remove_dir_all(env.path("etc/vmware/newdir")).unwrap();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n10.0.0.7 changed since\n");
    in_namespace(&env, RESTORE_SCRIPT, &out);
    let read = |name: &str| fs::read_to_string(out.join(name)).unwrap_or_default();
    let err = read("restore.err");
    assert_eq!(read("restore.code").trim(), "1", "{err}");
    assert!(err.starts_with("statectl: error: "), "{err}");
    assert!(err.contains("nothing under the root was changed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    eprintln!("full root: {}", err.trim());
    let (before, after) = (read("before"), read("after"));
    assert!(before.contains("etc/hosts"), "{before}");
    assert_eq!(before, after, "the root changed");
    assert_eq!(read("undo.ls"), "", "an undo archive was written");
}
