//! Load: runs that meet on the same bank. Eight concurrent `backup --force` runs, a `restore`
//! racing a `backup`, and a lock holder killed with SIGKILL. Every exit is 0 or 4 (lock busy),
//! the bank ends with one archive that verifies, and no temp file is left anywhere.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::{outcome, require, Outcome, TestEnv};

/// A host with a few hundred flagged files, so that runs last long enough to overlap.
pub fn busy_host() -> TestEnv {
    let env = TestEnv::esxi();
    for i in 0..300 {
        let body = format!("option{i} = \"{}\"\n", "x".repeat(i * 7)).repeat(20);
        env.flagged(&format!("etc/vmware/conf.d/file{i:03}.conf"), &body);
    }
    env
}

pub fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn statectl")
}

pub fn finish(child: Child) -> Outcome {
    outcome(child.wait_with_output().expect("wait for statectl"))
}

/// Names of statectl temp files left under `dir`, recursively.
fn temps_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".statectl-"))
        .collect()
}

#[track_caller]
fn assert_one_valid_archive(env: &TestEnv) {
    let archive = env.state("bootbank").display().to_string();
    env.run(&["verify", &archive]).ok();
    env.run(&["diff"]).ok();
    assert_eq!(
        temps_under(&env.root),
        Vec::<String>::new(),
        "temp files left"
    );
}

#[test]
fn eight_concurrent_forced_backups_exit_0_or_4_and_leave_one_valid_archive() {
    let env = busy_host();
    env.run(&["backup"]).ok();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            // Half wait for the lock, half give up at once: both outcomes are exercised.
            let wait = if i % 2 == 0 { "60" } else { "0" };
            spawn(&env, &["backup", "--force", "--wait", wait])
        })
        .collect();
    let outcomes: Vec<Outcome> = children.into_iter().map(finish).collect();
    for out in &outcomes {
        assert!(
            out.code == 0 || out.code == 4,
            "exit {}: {}",
            out.code,
            out.stderr
        );
        if out.code == 4 {
            assert!(out.stderr.starts_with("statectl: error:"), "{}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        }
    }
    let written = outcomes.iter().filter(|o| o.code == 0).count();
    eprintln!(
        "8 concurrent backup --force: {written} wrote, {} lock busy",
        8 - written
    );
    assert!(written >= 4, "the four waiting runs all write: {written}");
    assert_one_valid_archive(&env);
}

#[test]
fn a_restore_racing_a_backup_leaves_one_valid_archive_and_whole_files() {
    let env = busy_host();
    env.run(&["backup"]).ok();
    let saved = env.dir.path().join("saved-state.tgz");
    fs::copy(env.state("bootbank"), &saved).unwrap();
    let old_hosts = env.read("etc/hosts");
    for round in 0..8 {
        env.flagged(
            "etc/hosts",
            &format!("127.0.0.1 localhost\n10.0.0.{round} changed\n"),
        );
        let new_hosts = env.read("etc/hosts");
        // Either one starts first; the backup gives up at once when it finds the lock taken,
        // the restore does so in half of the rounds and waits in the others.
        let restore_wait = if round % 4 < 2 { "0" } else { "60" };
        let restore_args = ["restore", saved.to_str().unwrap(), "--wait", restore_wait];
        let backup_args = ["backup", "--force", "--wait", "0"];
        let (restore, backup) = if round % 2 == 0 {
            let restore = spawn(&env, &restore_args);
            (restore, spawn(&env, &backup_args))
        } else {
            let backup = spawn(&env, &backup_args);
            (spawn(&env, &restore_args), backup)
        };
        let (restored, backed_up) = (finish(restore), finish(backup));
        for out in [&restored, &backed_up] {
            assert!(
                out.code == 0 || out.code == 4,
                "round {round}: exit {}: {}",
                out.code,
                out.stderr
            );
        }
        eprintln!(
            "round {round}: restore exit {}, backup exit {}",
            restored.code, backed_up.code
        );
        let hosts = env.read("etc/hosts");
        assert!(
            hosts == old_hosts || hosts == new_hosts,
            "round {round}: etc/hosts is neither version: {:?}",
            String::from_utf8_lossy(&hosts)
        );
        env.run(&["backup"]).ok();
        assert_one_valid_archive(&env);
    }
}

/// The pid of `parent`'s first child (strace's tracee).
fn child_of(parent: u32) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_lock_holder_killed_with_sigkill_lets_the_next_run_in_at_once() {
    require("strace");
    let env = busy_host();
    env.run(&["backup"]).ok();
    let old = fs::read(env.state("bootbank")).unwrap();
    // The holder stalls 60 s in its first fsync: the temp archive is written, the lock held.
    let inner = env.command(&["backup", "--force"]);
    let mut holder = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=fsync"])
        .args(["-e", "inject=fsync:delay_enter=60s", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run strace");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let stalled = !temps_under(&env.bank("bootbank")).is_empty();
        if let (true, Some(pid)) = (stalled, child_of(holder.id())) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the holder never reached fsync");
        std::thread::sleep(Duration::from_millis(20));
    };
    // While it lives, the lock is busy.
    env.run(&["backup", "--force", "--wait", "0"]).code(4);
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    holder.wait().unwrap();
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), old);
    // No wait at all: the kernel released the flock with its holder.
    env.run(&["backup", "--force", "--wait", "0"]).ok();
    assert_one_valid_archive(&env);
}
