//! Issue 21's smaller items: `extract` then `pack` with relative paths from any working
//! directory, `verify` showing a lone error once beside its warnings, `status` off ESXi in one
//! message, and `backup` keeping the file's `MODULES=` spelling.

use std::fs;
use std::process::Command;

use crate::testenv::{gzip, outcome, tar_of, Outcome, TestEnv};

/// Runs the binary for `env` in the working directory `cwd`.
fn run_in(env: &TestEnv, cwd: &std::path::Path, args: &[&str]) -> Outcome {
    let mut command: Command = env.command(args);
    outcome(command.current_dir(cwd).output().unwrap())
}

#[test]
fn extract_then_pack_with_relative_paths_round_trips_from_any_directory() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let listed = env.run(&["list", "--json"]).ok().json();
    let work = env.dir.path().join("work");
    fs::create_dir_all(work.join("sub")).unwrap();
    let state = env.state("bootbank");
    let state = state.to_str().unwrap();
    run_in(&env, &work, &["extract", state, "--to", "x"]).ok();
    run_in(&env, &work, &["pack", "x", "--output", "y.tgz"]).ok();
    let again = run_in(&env, &work, &["list", "y.tgz", "--json"]).ok();
    assert_eq!(again.json(), listed);
    // From a subdirectory, naming both through `..`.
    let sub = work.join("sub");
    run_in(&env, &sub, &["pack", "../x", "--output", "../z.tgz"]).ok();
    assert_eq!(
        fs::read(work.join("z.tgz")).unwrap(),
        fs::read(work.join("y.tgz")).unwrap()
    );
}

#[test]
fn verify_shows_a_lone_error_once_and_its_warnings() {
    let env = TestEnv::new();
    let inner = gzip(&tar_of(&[("etc/suid", b"x", 0o4755)]));
    let outer = gzip(&tar_of(&[
        ("local.tgz", &inner, 0o600),
        ("notes.txt", b"n", 0o600),
    ]));
    let archive = env.dir.path().join("odd.tgz");
    fs::write(&archive, outer).unwrap();
    let out = env.run(&["verify", archive.to_str().unwrap()]).code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(all.matches("setuid").count(), 1, "{all}");
    assert_eq!(all.matches("notes.txt").count(), 1, "{all}");
}

#[test]
fn status_off_esxi_says_it_in_one_line() {
    let env = TestEnv::new();
    fs::remove_file(env.bank("bootbank").join("boot.cfg")).unwrap();
    fs::remove_file(env.bank("altbootbank").join("boot.cfg")).unwrap();
    let out = env.run(&["status"]).ok();
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("no boot bank is eligible"),
        "{}",
        out.stdout
    );
}

#[test]
fn backup_keeps_the_upper_case_modules_key() {
    let env = TestEnv::esxi();
    let cfg = env.bank("bootbank").join("boot.cfg");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("modules=", "MODULES=");
    fs::write(&cfg, &text).unwrap();
    env.run(&["backup"]).ok();
    let after = fs::read_to_string(&cfg).unwrap();
    assert!(
        after.contains("\nMODULES=/jumpstrt.gz --- /useropts.gz --- /s.v00 --- state.tgz\n"),
        "{after}"
    );
    assert!(!after.contains("modules="), "{after}");
}
