//! Off-host copies (`backup --copy-to`, `[copy]`): many hosts backing up into one directory at
//! the same moment, retention, a bank that cannot be written (the copy still holds the new
//! state), a copy directory that is missing or read-only (the bank is written, the next run
//! catches the copy up), and an encrypted host's copy (`sweep::copies` kills the copy step).
//! The read-only cases need root and `unshare` (private mount namespaces; ignored otherwise, see docs/testing.md).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::encrypted::{encrypted_host, encryption_of, member};
use crate::testenv::{require, TestEnv};

/// 2026-11-30T00:53:20Z; rounds are a day apart.
pub(crate) const T0: i64 = 1_796_000_000;
const DAY: i64 = 86_400;

/// An esxi host with its own name and UUID (`esxNN`, `uuid-NN`).
pub(crate) fn fleet_host(i: usize) -> TestEnv {
    let env = TestEnv::esxi();
    env.flagged(
        "etc/vmware/esx.conf",
        &format!("/adv/Misc/HostName = \"esx{i:02}\"\n/system/uuid = \"uuid-{i:02}\"\n"),
    );
    env
}

pub(crate) fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub(crate) fn stamp(secs: i64) -> String {
    statectl::clock::utc_stamp(secs)
}

/// The file names in `dir`, sorted (empty when it does not exist).
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir` by relative path: (inode, mtime in ns, sha256).
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, i64, String)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let stamp = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
            (
                rel,
                (meta.ino(), stamp, sha256(&fs::read(e.path()).unwrap())),
            )
        })
        .collect()
}

/// The bundle names a host `esxNN` has after rounds at `times`.
fn expected(i: usize, times: &[i64]) -> Vec<String> {
    times
        .iter()
        .map(|t| format!("configBundle-esx{i:02}-{}.tgz", stamp(*t)))
        .collect()
}

#[test]
fn fifty_hosts_copy_into_one_directory_at_once_for_three_rounds() {
    let store = tempfile::tempdir().unwrap();
    let config = format!(
        "[copy]\nto = \"{}\"\nkeep = 1\nkeep_daily = 2\n",
        store.path().display()
    );
    let hosts: Vec<TestEnv> = (0..50).map(fleet_host).collect();
    for env in &hosts {
        fs::write(env.path("etc/statectl.toml"), &config).unwrap();
    }
    // Round 0: every host's first backup; round 1: all changed; round 2: only the even ones.
    let mut written: Vec<Vec<i64>> = vec![Vec::new(); hosts.len()];
    for round in 0..3usize {
        let now = T0 + round as i64 * DAY;
        for (i, env) in hosts.iter().enumerate() {
            if round == 1 || (round == 2 && i % 2 == 0) {
                env.flagged(
                    "etc/hosts",
                    &format!("10.0.0.{i} esx{i:02} # round {round}\n"),
                );
            }
        }
        let before = snapshot(store.path());
        let children: Vec<_> = hosts
            .iter()
            .map(|env| {
                env.command(&["-q", "backup"])
                    .env("STATECTL_NOW", now.to_string())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let status = child.wait_with_output().unwrap();
            assert!(status.status.success(), "round {round}: {status:?}");
        }
        for (i, times) in written.iter_mut().enumerate() {
            if round < 2 || i % 2 == 0 {
                times.push(now);
            }
            // keep 1 + the newest of each of the last 2 days: the two newest rounds.
            let keep = times.len().saturating_sub(2);
            times.drain(..keep);
        }
        check_round(store.path(), &hosts, &written, &before, round);
    }
}

/// Each host's directory holds exactly its expected copies, each readable and the newest
/// holding the bank's archive; no temp anywhere; what was there before and is still there is
/// byte for byte, inode for inode the same.
fn check_round(
    store: &Path,
    hosts: &[TestEnv],
    written: &[Vec<i64>],
    before: &BTreeMap<String, (u64, i64, String)>,
    round: usize,
) {
    let dirs = names(store);
    assert_eq!(dirs.len(), hosts.len(), "round {round}: {dirs:?}");
    for (i, env) in hosts.iter().enumerate() {
        let dir = store.join(format!("uuid-{i:02}"));
        assert_eq!(
            names(&dir),
            expected(i, &written[i]),
            "round {round}, host {i}"
        );
        let newest = dir.join(expected(i, &written[i]).pop().unwrap());
        let bank = fs::read(env.state("bootbank")).unwrap();
        assert_eq!(
            member(&newest, "state.tgz"),
            bank,
            "round {round}, host {i}"
        );
    }
    let history = hosts[0]
        .run(&["--json", "history", text(store)])
        .ok()
        .json();
    assert_eq!(history["warnings"], serde_json::json!([]), "round {round}");
    let listed: usize = history["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["copies"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, written.iter().map(Vec::len).sum::<usize>());
    let after = snapshot(store);
    for (path, state) in before {
        if let Some(now) = after.get(path) {
            assert_eq!(now, state, "round {round}: `{path}` was touched");
        }
    }
}

#[test]
fn keep_on_the_command_line_and_a_no_change_run_writes_nothing() {
    let env = fleet_host(1);
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("uuid-01");
    let backup = |now: i64| {
        env.command(&["backup", "--copy-to", text(store.path()), "--keep", "2"])
            .env("STATECTL_NOW", now.to_string())
            .output()
            .unwrap()
    };
    for round in 0..4 {
        env.flagged("etc/hosts", &format!("round {round}\n"));
        assert!(backup(T0 + round * 60).status.success());
    }
    // All on one day: the newest two (the day's newest is among them).
    assert_eq!(names(&dir), expected(1, &[T0 + 120, T0 + 180]));
    let before = snapshot(&dir);
    assert!(backup(T0 + 240).status.success());
    assert_eq!(
        snapshot(&dir),
        before,
        "a no-change run wrote into the copy directory"
    );
    // The newest copy gone: the next no-change run writes it again.
    fs::remove_file(dir.join(&expected(1, &[T0 + 180])[0])).unwrap();
    assert!(backup(T0 + 300).status.success());
    assert_eq!(names(&dir), expected(1, &[T0 + 120, T0 + 300]));
}

#[test]
fn a_missing_copy_directory_fails_the_copy_and_the_next_run_catches_up() {
    let env = fleet_host(2);
    let base = tempfile::tempdir().unwrap();
    let store = base.path().join("datastore");
    env.run(&["backup"]).ok();
    env.flagged("etc/hosts", "10.0.0.2 esx02\n");
    let out = env
        .command(&["backup", "--copy-to", text(&store)])
        .env("STATECTL_NOW", T0.to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("`{}`", store.display())),
        "names no DIR: {err}"
    );
    assert!(err.contains("is written"), "{err}");
    assert!(!store.exists(), "DIR was created");
    let listed = env.run(&["list", text(&env.state("bootbank"))]).ok();
    assert!(listed.stdout.contains("etc/hosts"));
    env.run(&["status"]).ok();
    // The datastore is back: a no-change run writes the missed copy.
    fs::create_dir(&store).unwrap();
    let out = env
        .command(&["backup", "--copy-to", text(&store)])
        .env("STATECTL_NOW", (T0 + 60).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = store.join("uuid-02");
    assert_eq!(names(&dir), expected(2, &[T0 + 60]));
    let bank = fs::read(env.state("bootbank")).unwrap();
    assert_eq!(member(&dir.join(&names(&dir)[0]), "state.tgz"), bank);
}

#[test]
fn an_encrypted_hosts_copy_stays_encrypted() {
    let env = encrypted_host();
    let store = tempfile::tempdir().unwrap();
    env.flagged("etc/hosts", "10.0.0.9 esx01\n");
    env.run(&["backup", "--copy-to", text(store.path())]).ok();
    let dir = store.path().join("5f1c-01");
    let bundle = dir.join(&names(&dir)[0]);
    let state = store.path().join("state.tgz");
    fs::write(&state, member(&bundle, "state.tgz")).unwrap();
    encryption_of(&state);
    assert_eq!(
        fs::read(&state).unwrap(),
        fs::read(env.state("bootbank")).unwrap()
    );
}

/// Runs `statectl ARGS` of `env` with `ro` bind-mounted read-only in a private mount
/// namespace; returns the exit code and stderr.
fn with_read_only(env: &TestEnv, ro: &Path, args: &[&str]) -> (i32, String) {
    let inner = env.command(args);
    let mut cmd = Command::new("unshare");
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let script = "mount --bind \"$RO\" \"$RO\" && mount -o remount,bind,ro \"$RO\" && exec \"$@\"";
    let out = cmd
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env("RO", ro)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[test]
#[ignore = "needs root and unshare (.ci/run runs the suite as root)"]
fn a_read_only_bank_still_gets_its_copy_and_a_read_only_directory_catches_up() {
    require("root");
    require("unshare");
    let env = fleet_host(3);
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("uuid-03");
    env.run(&["backup"]).ok();
    let old_bank = fs::read(env.state("bootbank")).unwrap();
    env.flagged("etc/hosts", "10.0.0.3 esx03 # new\n");
    let args = ["backup", "--copy-to", text(store.path())];
    let run_files = names(&env.run_dir);
    let (code, err) = with_read_only(&env, &env.bank("bootbank"), &args);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        names(&env.run_dir),
        run_files,
        "the spool left files in the run dir"
    );
    assert!(err.contains("bootbank`"), "names no bank: {err}");
    let copy = dir.join(&names(&dir)[0]);
    assert!(
        err.contains(&format!("`{}`", copy.display())),
        "names no copy: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1 + err.matches("warning").count(),
        "{err}"
    );
    assert_eq!(
        fs::read(env.state("bootbank")).unwrap(),
        old_bank,
        "bank changed"
    );
    assert_eq!(names(&dir).len(), 1, "temps left: {:?}", names(&dir));
    // The copy holds the new state: its etc/hosts is the changed one.
    let state = store.path().join("copy-state.tgz");
    fs::write(&state, member(&copy, "state.tgz")).unwrap();
    let local = store.path().join("copy-local.tgz");
    fs::write(&local, member(&state, "local.tgz")).unwrap();
    assert_eq!(member(&local, "etc/hosts"), b"10.0.0.3 esx03 # new\n");
    // Now the directory is read-only: the bank is written, the copy fails naming DIR.
    fs::remove_file(&copy).unwrap();
    let (code, err) = with_read_only(&env, store.path(), &args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("`{}`", store.path().display())),
        "{err}"
    );
    assert_ne!(
        fs::read(env.state("bootbank")).unwrap(),
        old_bank,
        "bank not written"
    );
    assert!(names(&dir).is_empty());
    let out = env.run(&args).ok();
    assert_eq!(names(&dir).len(), 1, "{}", out.stderr);
    let bank = fs::read(env.state("bootbank")).unwrap();
    assert_eq!(member(&dir.join(&names(&dir)[0]), "state.tgz"), bank);
}

#[test]
#[ignore = "needs root and unshare (.ci/run runs the suite as root)"]
fn an_encrypted_hosts_copy_of_a_state_its_read_only_bank_refused_is_encrypted_again() {
    require("root");
    require("unshare");
    let env = encrypted_host();
    let store = tempfile::tempdir().unwrap();
    let keys_before = encryption_of(&env.state("bootbank")).keystore;
    env.flagged("etc/hosts", "10.0.0.9 esx01 # new\n");
    let args = ["backup", "--copy-to", text(store.path())];
    let (code, err) = with_read_only(&env, &env.bank("bootbank"), &args);
    assert_eq!(code, 1, "{err}");
    let dir = store.path().join("5f1c-01");
    let state = store.path().join("state.tgz");
    fs::write(&state, member(&dir.join(&names(&dir)[0]), "state.tgz")).unwrap();
    assert_eq!(
        encryption_of(&state).keystore,
        keys_before,
        "not the host's key store"
    );
    let listed = env.run(&["list", text(&state)]).ok();
    assert!(listed.stdout.contains("etc/hosts"), "{}", listed.stdout);
    let extracted = store.path().join("out");
    env.run(&["extract", text(&state), "--to", text(&extracted)])
        .ok();
    assert_eq!(
        fs::read(extracted.join("etc/hosts")).unwrap(),
        b"10.0.0.9 esx01 # new\n"
    );
}
