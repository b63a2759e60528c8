//! Races of 8 concurrent runs of different writers on one host (see `concurrent_runs` for runs of one
//! command): `backup --bank DIR` against `restore`, `passwd` against `backup`, `install`
//! against `backup`, `set-next` against `set-next`. Every exit is 0 or 4, and every archive (and
//! `boot.cfg`) is one that some serial order of the same runs would leave: never a mix.

use std::fs;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::concurrent_runs::{busy_host, finish, spawn};
use crate::testenv::{require, Outcome, TestEnv};

#[track_caller]
fn exits_0_or_4(outcomes: &[Outcome]) {
    for out in outcomes {
        assert!(
            out.code == 0 || out.code == 4,
            "exit {}: {}",
            out.code,
            out.stderr
        );
    }
}

/// The rows of `list --json` of an archive: what it holds, metadata included.
fn contents(env: &TestEnv, archive: &str) -> serde_json::Value {
    env.run(&["list", archive, "--json"]).ok().json()
}

/// The busy host's files, all changed.
fn change_everything(env: &TestEnv, tag: &str) {
    for i in 0..300 {
        env.flagged(
            &format!("etc/vmware/conf.d/file{i:03}.conf"),
            &format!("{tag} {i}\n"),
        );
    }
}

/// `statectl restore ARCHIVE` with every renameat slowed by 5 ms (strace): its commit phase
/// lasts long enough that runs started meanwhile meet it.
fn slow_restore(env: &TestEnv, archive: &str) -> Child {
    let inner = env.command(&["restore", archive]);
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=renameat"])
        .args(["-e", "inject=renameat:delay_exit=5000", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strace")
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn backups_of_other_banks_never_read_a_root_a_restore_is_writing() {
    require("strace");
    let env = busy_host();
    env.run(&["backup"]).ok();
    let a = env.dir.path().join("a.tgz");
    fs::copy(env.state("bootbank"), &a).unwrap();
    let first_a = env.read("etc/vmware/conf.d/file000.conf");
    change_everything(&env, "version b");
    env.run(&["backup"]).ok();
    let b = env.dir.path().join("b.tgz");
    fs::copy(env.state("bootbank"), &b).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let expected = [contents(&env, a), contents(&env, b)];
    let mut children = vec![slow_restore(&env, a)];
    // Start the others once the restore is renaming files into place.
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.read("etc/vmware/conf.d/file000.conf") != first_a {
        assert!(
            Instant::now() < deadline,
            "the restore never started renaming"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let banks: Vec<String> = (0..4)
        .map(|i| {
            let bank = env.dir.path().join(format!("bank{i}"));
            fs::create_dir(&bank).unwrap();
            bank.display().to_string()
        })
        .collect();
    for (i, bank) in banks.iter().enumerate() {
        let wait = if i == 3 { "0" } else { "60" };
        children.push(spawn(
            &env,
            &["backup", "--bank", bank, "--force", "--wait", wait],
        ));
        if i < 3 {
            let archive = if i % 2 == 0 { b } else { a };
            children.push(spawn(&env, &["restore", archive, "--wait", wait]));
        }
    }
    let outcomes: Vec<Outcome> = children.into_iter().map(finish).collect();
    exits_0_or_4(&outcomes);
    let mut written = 0;
    for bank in &banks {
        let archive = format!("{bank}/state.tgz");
        if fs::metadata(&archive).is_ok() {
            written += 1;
            let got = contents(&env, &archive);
            assert!(expected.contains(&got), "{archive} mixes the two versions");
        }
    }
    assert!(written >= 3, "the waiting backups all write: {written}");
}

#[test]
fn passwd_racing_backups_leaves_the_archive_and_the_host_with_the_same_hash() {
    let env = busy_host();
    env.run(&["backup"]).ok();
    let mut children: Vec<Child> = Vec::new();
    for i in 0..4 {
        let mut child = env
            .command(&["passwd", "root", "--password-stdin", "--wait", "60"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let line = format!("password-{i}\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        children.push(child);
        children.push(spawn(&env, &["backup", "--force", "--wait", "60"]));
    }
    let outcomes: Vec<Outcome> = children.into_iter().map(finish).collect();
    exits_0_or_4(&outcomes);
    env.run(&["verify"]).ok();
    let out = env.dir.path().join("extracted");
    env.run(&["extract", "--to", out.to_str().unwrap()]).ok();
    let archived = fs::read_to_string(out.join("etc/shadow")).unwrap();
    let live = String::from_utf8(env.read("etc/shadow")).unwrap();
    assert_eq!(
        archived, live,
        "the archive and the host disagree on the hash"
    );
    assert!(live.starts_with("root:$6$"), "{live}");
}

#[test]
fn install_racing_backups_leaves_one_whole_archive_listed_in_boot_cfg() {
    let env = busy_host();
    env.run(&["backup"]).ok();
    let installed = env.dir.path().join("installed.tgz");
    fs::copy(env.state("bootbank"), &installed).unwrap();
    let installed = installed.to_str().unwrap();
    change_everything(&env, "live");
    env.run(&["backup", "--dry-run"]).ok();
    let mut children: Vec<Child> = Vec::new();
    for _ in 0..4 {
        children.push(spawn(&env, &["install", installed]));
        children.push(spawn(&env, &["backup", "--force", "--wait", "60"]));
    }
    let outcomes: Vec<Outcome> = children.into_iter().map(finish).collect();
    exits_0_or_4(&outcomes);
    let state = env.state("bootbank");
    let state = state.to_str().unwrap();
    env.run(&["verify", state]).ok();
    let got = contents(&env, state);
    let fresh = env.dir.path().join("fresh");
    fs::create_dir(&fresh).unwrap();
    let fresh_bank = fresh.to_str().unwrap();
    env.run(&["backup", "--bank", fresh_bank, "--force"]).ok();
    let live = contents(&env, &format!("{fresh_bank}/state.tgz"));
    assert!(
        got == contents(&env, installed) || got == live,
        "a mixed archive"
    );
    let cfg = fs::read_to_string(env.bank("bootbank").join("boot.cfg")).unwrap();
    assert!(cfg.contains("--- state.tgz"), "{cfg}");
}

#[test]
fn concurrent_set_next_runs_end_as_a_serial_order_would() {
    let env = TestEnv::esxi();
    let mut children: Vec<Child> = Vec::new();
    for i in 0..8 {
        let bank = if i % 2 == 0 {
            "altbootbank"
        } else {
            "bootbank"
        };
        children.push(spawn(&env, &["bank", "set-next", bank, "--wait", "60"]));
    }
    let outcomes: Vec<Outcome> = children.into_iter().map(finish).collect();
    exits_0_or_4(&outcomes);
    let status = env.run(&["bank", "status", "--json"]).ok().json();
    let banks = status["banks"].as_array().unwrap();
    let updated: Vec<u64> = banks
        .iter()
        .map(|b| b["updated"].as_u64().unwrap())
        .collect();
    let (low, high) = (
        *updated.iter().min().unwrap(),
        *updated.iter().max().unwrap(),
    );
    // Each run raises its bank just above the other one: serially, they stay one apart.
    assert_eq!(high, low + 1, "{status}");
    let next = banks.iter().find(|b| b["updated"] == high).unwrap();
    assert_eq!(status["next_boot"], next["name"], "{status}");
}
