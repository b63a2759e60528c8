//! Real faults, not injected ones: the bootbank on a 1 MiB tmpfs in a private mount namespace
//! (`unshare -m`), filled up, then remounted read-only. Each time `backup` exits 1 with a
//! message naming the bank, the archive already there is byte-identical, and no temp file is
//! left. Needs root and `unshare` (SKIPPED otherwise).

use std::fs;

use crate::testenv::{have, TestEnv};

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

#[test]
fn a_full_or_read_only_bank_fails_cleanly_and_loses_nothing() {
    if !have("unshare") || unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root and unshare");
        return;
    }
    let env = TestEnv::esxi();
    // About 300 KiB of barely compressible content: the new archive cannot fit.
    let noise: String = (0..40_000u32)
        .map(|i| format!("{:08x}", i.wrapping_mul(2_654_435_761)))
        .collect();
    env.flagged("etc/vmware/big.xml", &noise);
    let out = env.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let status = env
        .command(&[])
        .get_envs()
        .fold(std::process::Command::new("unshare"), |mut cmd, (k, v)| {
            if let Some(v) = v {
                cmd.env(k, v);
            }
            cmd
        })
        .args(["-m", "--propagation", "private", "sh", "-c", SCRIPT])
        .env("STATECTL", env!("CARGO_BIN_EXE_statectl"))
        .env("ROOT", &env.root)
        .env("OUT", &out)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "namespace script failed");
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
