//! The kill sweep of every writing command other than `backup` (`crash` covers that one):
//! `restore`, `passwd`, `pack`, `export`, `extract`, `install`, `bank sync` and
//! `bank set-next`, each SIGKILLed (strace, see `sweep`) at every rename and at a sample of
//! its other openat/write/fsync/unlink/mkdir calls. After each kill: a backup of the root
//! archives no temp file (a killed restore's temps carry the archived mode, sticky bit
//! included), the next run of the same command succeeds and does what a clean run does, and no
//! temp file is left anywhere (root, banks, run dir, output directories). Needs `strace`
//! (ignored otherwise).

use std::fs;
use std::path::{Path, PathBuf};

use crate::sweep::{injected, run_injected};
use crate::testenv::{require, TestEnv};

/// Every rename is a kill point; of these, a sample of invocations.
const RENAMES: &[&str] = &["rename", "renameat", "renameat2"];
const SAMPLED: &[&str] = &["openat", "write", "fsync", "unlink", "unlinkat", "mkdir"];
const SAMPLE: &[usize] = &[1, 3, 8, 21, 55, 144, 377, 987];

/// One command of the sweep: `setup` lays out a fresh host and gives the arguments;
/// `check` says the host is as a clean run of them leaves it.
struct Case {
    setup: fn(&TestEnv) -> Vec<String>,
    check: fn(&TestEnv),
}

fn at(env: &TestEnv, name: &str) -> PathBuf {
    env.dir.path().join(name)
}

fn text(path: PathBuf) -> String {
    path.to_str().unwrap().to_string()
}

/// The statectl temp files under `dir`, recursively.
fn temps_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".statectl-"))
        .map(|e| e.path().display().to_string())
        .collect()
}

/// Runs `case` killed at `syscall` invocation `n`; false when the run never got there.
fn kill_once(case: &Case, syscall: &str, n: usize) -> bool {
    let env = TestEnv::esxi();
    let args = (case.setup)(&env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let inject = format!("{syscall}:signal=SIGKILL:when={n}");
    let (out, log) = run_injected(&env, &args, syscall, &inject);
    let what = format!("{args:?} killed at {inject}");
    if !injected(&log) && out.code != -1 {
        assert_eq!(
            out.code, 0,
            "{what}: not killed, yet failed: {}",
            out.stderr
        );
        (case.check)(&env);
        return false;
    }
    // No backup takes a temp for a persisted file, whatever the kill left.
    let check_bank = at(&env, "check-bank");
    fs::create_dir_all(&check_bank).unwrap();
    let bank = text(check_bank.clone());
    env.run(&["backup", "--bank", &bank, "--force", "-q"]).ok();
    let listed = env.run(&["list", &text(check_bank.join("state.tgz"))]).ok();
    assert!(
        !listed.stdout.contains(".statectl-"),
        "{what}: archived a temp: {}",
        listed.stdout
    );
    // The next run of the same command completes it (a killed extract that got its directory
    // renamed into place leaves it complete: the re-run adds --force).
    let mut again = args.clone();
    if args[0] == "extract" && Path::new(args[2]).exists() {
        again.push("--force");
    }
    let out = env.run(&again);
    assert_eq!(out.code, 0, "{what}: the next run failed: {}", out.stderr);
    (case.check)(&env);
    let temps = temps_under(env.dir.path());
    assert!(
        temps.is_empty(),
        "{what}: temps left after the next run: {temps:?}"
    );
    true
}

/// Sweeps `case` over every rename and the sampled calls; returns the kill points.
fn sweep(case: &Case) -> usize {
    require("strace");
    let mut points = 0;
    for syscall in RENAMES {
        let mut n = 1;
        while kill_once(case, syscall, n) {
            points += 1;
            n += 1;
        }
    }
    for syscall in SAMPLED {
        for &n in SAMPLE {
            if !kill_once(case, syscall, n) {
                break;
            }
            points += 1;
        }
    }
    eprintln!(
        "writers sweep of {:?}: {points} kill points",
        (case.setup)(&TestEnv::esxi())
    );
    assert!(points >= 5, "only {points} kill points");
    points
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_killed_restore_is_completed_by_the_next_run() {
    sweep(&Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            fs::copy(env.state("bootbank"), at(env, "saved.tgz")).unwrap();
            env.flagged("etc/hosts", "10.0.0.1 other\n");
            fs::remove_file(env.path("etc/vmware/esx.conf")).unwrap();
            vec!["restore".into(), text(at(env, "saved.tgz"))]
        },
        check: |env| {
            let plan = env
                .run(&[
                    "restore",
                    &text(at(env, "saved.tgz")),
                    "--dry-run",
                    "--json",
                ])
                .ok()
                .json();
            assert_eq!(plan["create"], serde_json::json!([]), "{plan}");
            assert_eq!(plan["overwrite"], serde_json::json!([]), "{plan}");
        },
    });
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_killed_passwd_is_completed_by_the_next_run() {
    sweep(&Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            vec!["passwd".into(), "root".into(), "--clear".into()]
        },
        check: |env| {
            let live = String::from_utf8(env.read("etc/shadow")).unwrap();
            assert!(live.starts_with("root::"), "{live}");
            env.run(&["verify"]).ok();
            let out = at(
                env,
                &format!("x{}", fs::read_dir(env.dir.path()).unwrap().count()),
            );
            env.run(&["extract", "--to", &text(out.clone())]).ok();
            let archived = fs::read_to_string(out.join("etc/shadow")).unwrap();
            assert!(archived.starts_with("root::"), "{archived}");
            fs::remove_dir_all(out).unwrap();
        },
    });
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_killed_pack_export_or_extract_is_completed_by_the_next_run() {
    let pack = Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            env.run(&["extract", "--to", &text(at(env, "tree"))]).ok();
            fs::create_dir(at(env, "out")).unwrap();
            let output = text(at(env, "out/state.tgz"));
            vec![
                "pack".into(),
                text(at(env, "tree")),
                "--output".into(),
                output,
            ]
        },
        check: |env| {
            env.run(&["verify", &text(at(env, "out/state.tgz"))]).ok();
        },
    };
    let export = Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            fs::create_dir(at(env, "bundles")).unwrap();
            vec!["export".into(), "--to".into(), text(at(env, "bundles"))]
        },
        check: |env| {
            let bundles = fs::read_dir(at(env, "bundles")).unwrap().count();
            assert!(bundles >= 1, "no bundle");
        },
    };
    let extract = Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            vec!["extract".into(), "--to".into(), text(at(env, "ex/tree"))]
        },
        check: |env| {
            let hosts = fs::read(at(env, "ex/tree/etc/hosts")).unwrap();
            assert_eq!(hosts, env.read("etc/hosts"));
        },
    };
    let points = sweep(&pack) + sweep(&export) + sweep(&extract);
    eprintln!("pack/export/extract: {points} kill points");
}

/// A bootbank whose boot.cfg does not list state.tgz yet, and an archive of this host.
fn unlisted(env: &TestEnv) -> String {
    env.run(&["backup"]).ok();
    fs::copy(env.state("bootbank"), at(env, "saved.tgz")).unwrap();
    env.boot_cfg("bootbank", 3, 0, "7.0.3-0.20.19193900");
    text(at(env, "saved.tgz"))
}

fn lists_state(env: &TestEnv, bank: &str) {
    let cfg = fs::read_to_string(env.bank(bank).join("boot.cfg")).unwrap();
    assert!(cfg.contains("--- state.tgz"), "{bank}: {cfg}");
    env.run(&["verify", &text(env.state(bank))]).ok();
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_killed_install_sync_or_set_next_is_completed_by_the_next_run() {
    let install = Case {
        setup: |env| vec!["install".into(), unlisted(env)],
        check: |env| lists_state(env, "bootbank"),
    };
    let sync = Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            vec!["bank".into(), "sync".into()]
        },
        check: |env| lists_state(env, "altbootbank"),
    };
    let set_next = Case {
        setup: |env| {
            env.run(&["backup"]).ok();
            vec!["bank".into(), "set-next".into(), "altbootbank".into()]
        },
        check: |env| {
            let status = env.run(&["bank", "status", "--json"]).ok().json();
            assert_eq!(status["next_boot"], "altbootbank", "{status}");
        },
    };
    let points = sweep(&install) + sweep(&sync) + sweep(&set_next);
    eprintln!("install/sync/set-next: {points} kill points");
}
