//! ConfigStore (ESXi 7+): a live SQLite store at `etc/vmware/configstore/current-store-1` is
//! archived as a consistent snapshot (SQLite's online backup) in place of the backup copy.
//! A Python writer commits rows in a loop while backups run: every archived snapshot passes
//! python3's `PRAGMA integrity_check`, holds a committed prefix, and holds the last row
//! committed before the backup started. A no-change run with an unchanged store opens neither
//! the store nor its snapshot (strace). A locked or corrupt store fails the run, archive kept.
//! Needs python3 (and strace for the reads test; ignored otherwise).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::sweep::traced;
use crate::testenv::{require, sh, TestEnv};

const LIVE: &str = "etc/vmware/configstore/current-store-1";
const MEMBER: &str = "var/lib/vmware/configstore/backup/current-store-1";

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/configstore_load.py")
}

fn py(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(helper())
        .args(args)
        .output()
        .unwrap()
}

/// An esxi host with a live store (journal `mode`) and a stale backup copy beside it.
fn host_with_store(mode: &str) -> TestEnv {
    require("python3");
    let env = TestEnv::esxi();
    fs::create_dir_all(env.path(LIVE).parent().unwrap()).unwrap();
    let made = py(&["create", env.path(LIVE).to_str().unwrap(), mode]);
    assert!(made.status.success(), "{made:?}");
    env.file(MEMBER, Some("stale backup copy\n"), 0o644);
    env
}

/// The archived snapshot of the bootbank, extracted into `name` under the test dir.
fn archived_store(env: &TestEnv, name: &str) -> PathBuf {
    let out = env.dir.path().join(name);
    env.run(&["extract", "--to", out.to_str().unwrap()]).ok();
    out.join(MEMBER)
}

/// `(rows, highest id)` of the snapshot at `db`, checked by python3's sqlite3.
fn checked(db: &Path) -> (u64, u64) {
    let out = py(&["check", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}: {out:?}", db.display());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn last_logged(log: &Path) -> u64 {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines().last().map_or(0, |l| l.parse().unwrap())
}

#[test]
#[ignore = "needs python3 (.ci/run installs it)"]
fn snapshots_under_write_load_are_whole_committed_prefixes() {
    let env = host_with_store("delete");
    let log = env.dir.path().join("committed.log");
    let child = Command::new("python3")
        .arg(helper())
        .args([
            "write",
            env.path(LIVE).to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _writer = Writer(child);
    while last_logged(&log) < 50 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut seen = Vec::new();
    for round in 0..6 {
        let before = last_logged(&log);
        let json = env.run(&["--json", "backup", "--wait", "30"]).ok().json();
        assert_eq!(json["action"], "written", "round {round}");
        let (_, top) = checked(&archived_store(&env, &format!("x{round}")));
        assert!(
            top >= before,
            "round {round}: {top} rows, {before} committed before"
        );
        seen.push(top);
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(
        env.read(MEMBER),
        b"stale backup copy\n",
        "the host's backup copy was written"
    );
}

#[test]
#[ignore = "needs python3 (.ci/run installs it)"]
fn the_member_carries_the_live_stat_and_a_wal_commit_counts() {
    let env = host_with_store("wal");
    let live = env.path(LIVE);
    fs::set_permissions(&live, fs::Permissions::from_mode(0o640)).unwrap();
    sh(
        env.dir.path(),
        &format!("touch -d @1700000000 {}", live.display()),
    );
    env.run(&["backup"]).ok();
    let listed = env.run(&["--json", "list"]).ok().json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == MEMBER)
        .expect("the snapshot member")
        .clone();
    assert_eq!(row["mode"], "0640");
    assert_eq!(row["mtime"], 1_700_000_000);
    assert_eq!(row["uid"], fs::metadata(&live).unwrap().uid());
    for entry in fs::read_dir(&env.run_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("configstore-") {
            assert_eq!(entry.metadata().unwrap().mode() & 0o777, 0o600, "{name}");
        }
    }
    // A commit that stays in the WAL (the main file untouched) is still a change.
    let wal = format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute('PRAGMA wal_autocheckpoint = 0'); \
         c.execute(\"INSERT INTO rows VALUES (1, 'one')\"); c.commit(); import os; os._exit(0)",
        live.display()
    );
    let ran = Command::new("python3").args(["-c", &wal]).status().unwrap();
    assert!(ran.success());
    let json = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(json["modified"], serde_json::json!([MEMBER]));
    let out = env.dir.path().join("x");
    env.run(&["extract", "--to", out.to_str().unwrap()]).ok();
    assert_eq!(checked(&out.join(MEMBER)), (1, 1));
}

#[test]
#[ignore = "needs python3 and strace (.ci/run installs them)"]
fn a_no_change_run_with_an_unchanged_store_opens_neither_it_nor_its_snapshot() {
    let env = host_with_store("delete");
    require("strace");
    let live = env.path(LIVE);
    sh(
        env.dir.path(),
        &format!("touch -d @1700000000 {}", live.display()),
    );
    env.run(&["backup"]).ok();
    let opened = |log: &str, what: &str| {
        log.lines()
            .filter(|l| l.contains("open") && l.contains(what) && !l.contains("= -1"))
            .count()
    };
    let (out, log) = traced(&env, &["--json", "backup"], "open,openat", None);
    assert_eq!(out.json()["action"], "unchanged", "{}", out.stderr);
    assert_eq!(opened(&log, LIVE), 0, "{log}");
    assert_eq!(opened(&log, "configstore-"), 0, "{log}");
    // The store moved (same content): one snapshot, compared by content, still unchanged.
    sh(
        env.dir.path(),
        &format!("touch -d @1700000100 {}", live.display()),
    );
    let (out, log) = traced(&env, &["--json", "status"], "open,openat", None);
    assert_eq!(
        out.code, 3,
        "the mtime is part of the record: {}",
        out.stdout
    );
    assert!(opened(&log, LIVE) >= 1, "{log}");
}

#[test]
#[ignore = "needs python3 (.ci/run installs it)"]
fn a_locked_or_corrupt_store_fails_the_backup_naming_it_and_keeps_the_archive() {
    let env = host_with_store("delete");
    let live = env.path(LIVE);
    env.run(&["backup"]).ok();
    let state = env.state("bootbank");
    let before = fs::read(&state).unwrap();
    env.flagged("etc/hosts", "10.0.0.9 esx09\n");
    // The store's stat moves (as a commit moves it), so this run must snapshot it.
    sh(
        env.dir.path(),
        &format!("touch -d @1700000200 {}", live.display()),
    );
    let hold = format!(
        "import sqlite3, sys, time; c = sqlite3.connect('{}', isolation_level=None); \
         c.execute('BEGIN EXCLUSIVE'); c.execute(\"INSERT INTO rows VALUES (7, 'x')\"); \
         print('held', flush=True); time.sleep(30)",
        live.display()
    );
    let mut child = Command::new("python3")
        .args(["-c", &hold])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let _holder = Writer(child);
    let out = env.run(&["backup", "--wait", "1"]).code(1);
    assert!(
        out.stderr.contains(&live.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("still locked"), "{}", out.stderr);
    assert_eq!(fs::read(&state).unwrap(), before);
    drop(_holder);

    // Page 2 (the table's b-tree) overwritten: the header still says SQLite.
    let mut bytes = fs::read(&live).unwrap();
    assert!(bytes.len() >= 8192, "{} bytes", bytes.len());
    bytes[4096..8192].fill(0xa5);
    fs::write(&live, bytes).unwrap();
    let out = env.run(&["backup"]).code(1);
    assert!(
        out.stderr.contains(&live.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("corrupt"), "{}", out.stderr);
    assert_eq!(fs::read(&state).unwrap(), before);
}
