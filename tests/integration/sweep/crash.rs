//! Crash safety, proven by syscall-level fault injection (see `sweep`): `statectl backup`
//! killed at every openat/write/fsync/close/rename/unlink it makes, and failed with ENOSPC at
//! every write and EIO at every fsync. After each: every bank's `state.tgz` and `boot.cfg` are
//! byte-identical to the old or the new ones, no `boot.cfg` names a missing archive, failures
//! exit 1 and leave no temp file, nothing is renamed after a failed fsync, and the next normal
//! run succeeds with exactly the banks a clean run makes. Needs `strace` (ignored otherwise).

use std::fs;

use crate::sweep::{injected, scene, Scene, SYSCALLS};
use crate::testenv::{require, TestEnv};

/// Kills the backup at invocation N of each syscall, for every N it reaches; returns the
/// number of kill points per syscall.
pub fn kill_sweep(scene: &Scene) -> Vec<(&'static str, usize)> {
    let mut points = Vec::new();
    for syscall in SYSCALLS {
        let mut n = 1;
        loop {
            scene.reset();
            let inject = format!("{syscall}:signal=SIGKILL:when={n}");
            let (out, log) = scene.backup_injected(syscall, &inject);
            if !injected(&log) && out.code != -1 {
                assert_eq!(
                    out.code, 0,
                    "{inject}: not killed yet failed: {}",
                    out.stderr
                );
                assert!(
                    scene.snapshot() == scene.new,
                    "{inject}: a full run differs"
                );
                break;
            }
            let what = format!("killed at {syscall} #{n}");
            scene.check_consistent(&what);
            scene.check_recovers(&what);
            n += 1;
        }
        points.push((*syscall, n - 1));
    }
    points
}

fn report(kind: &str, points: &[(&str, usize)]) -> usize {
    let total: usize = points.iter().map(|(_, n)| n).sum();
    let each: Vec<String> = points.iter().map(|(s, n)| format!("{s} {n}")).collect();
    eprintln!("{kind}: {total} injection points ({})", each.join(", "));
    total
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_backup_killed_at_any_syscall_leaves_old_or_new_banks() {
    require("strace");
    let scene = scene(None);
    let points = kill_sweep(&scene);
    let total = report("kill sweep (ext4/tmpfs)", &points);
    let count = |name: &str| points.iter().find(|(s, _)| *s == name).map_or(0, |p| p.1);
    assert!(count("fsync") + count("fdatasync") >= 4, "{points:?}");
    assert!(
        count("rename") + count("renameat") + count("renameat2") >= 3,
        "{points:?}"
    );
    assert!(total > 50, "{points:?}");
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn enospc_at_any_write_fails_cleanly_or_completes() {
    require("strace");
    let scene = scene(None);
    let (mut n, mut failed) = (1, 0);
    loop {
        scene.reset();
        let inject = format!("write:error=ENOSPC:when={n}");
        let (out, log) = scene.backup_injected("write", &inject);
        if !injected(&log) {
            break;
        }
        let temps = scene.check_consistent(&inject);
        assert!(temps.is_empty(), "{inject}: temp files left: {temps:?}");
        match out.code {
            0 => assert!(
                scene.snapshot() == scene.new,
                "{inject}: exit 0, banks not new"
            ),
            1 => {
                failed += 1;
                assert!(
                    out.stderr.starts_with("statectl: error: "),
                    "{}",
                    out.stderr
                );
                assert!(out.stderr.contains("bank"), "{inject}: {}", out.stderr);
            }
            code => panic!("{inject}: exit {code}: {}", out.stderr),
        }
        scene.check_recovers(&inject);
        n += 1;
    }
    report("ENOSPC on write", &[("write", n - 1)]);
    assert!(
        failed >= 2,
        "only {failed} of {} writes failed the run",
        n - 1
    );
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn eio_at_any_fsync_fails_and_renames_nothing_after_it() {
    require("strace");
    let scene = scene(None);
    let trace = "fsync,fdatasync,rename,renameat,renameat2";
    let mut points = Vec::new();
    for syscall in ["fsync", "fdatasync"] {
        let mut n = 1;
        loop {
            scene.reset();
            let inject = format!("{syscall}:error=EIO:when={n}");
            let (out, log) = scene.backup_injected(trace, &inject);
            if !injected(&log) {
                break;
            }
            assert_eq!(out.code, 1, "{inject}: {}", out.stdout);
            assert!(
                out.stderr.starts_with("statectl: error: "),
                "{}",
                out.stderr
            );
            let temps = scene.check_consistent(&inject);
            assert!(temps.is_empty(), "{inject}: temp files left: {temps:?}");
            let after = log.split("(INJECTED)").nth(1).unwrap_or_default();
            let renamed = after
                .lines()
                .any(|l| l.contains("rename") && l.trim_end().ends_with("= 0"));
            assert!(
                !renamed,
                "{inject}: a rename followed the failed fsync:\n{log}"
            );
            scene.check_recovers(&inject);
            n += 1;
        }
        points.push((syscall, n - 1));
    }
    assert!(report("EIO on fsync", &points) >= 4, "{points:?}");
}

/// A FAT rename that a crash cut between "delete the target's entry" and "write the new one"
/// leaves no `state.tgz`, only the complete temp file: the next run must recover it, not delete
/// it (a half-written temp beside it is not taken).
#[test]
fn half_done_rename_is_recovered_not_deleted() {
    let env = TestEnv::esxi();
    env.run(&["backup", "-q"]).ok();
    let bank = env.bank("bootbank");
    let saved = fs::read(bank.join("state.tgz")).unwrap();
    fs::rename(bank.join("state.tgz"), bank.join(".statectl-AbC123.tmp")).unwrap();
    fs::write(bank.join(".statectl-zzz.tmp"), &saved[..saved.len() / 2]).unwrap();
    let out = env.run(&["backup", "--json"]).ok();
    assert_eq!(out.json()["action"], "unchanged", "{}", out.stderr);
    assert!(out.stderr.contains("recovered"), "{}", out.stderr);
    assert_eq!(fs::read(bank.join("state.tgz")).unwrap(), saved);
    let mut left: Vec<_> = fs::read_dir(&bank)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["boot.cfg", "state.tgz"]);
}
