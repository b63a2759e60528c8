//! Durability at the end, not per file (`src/fs/durable.rs`): `restore` and `extract` flush with
//! `syncfs` instead of one fsync per file, and the restore's crash guarantee holds with it.
//! Killed at every rename, flush, write and fsync, each restored file is the old or the new
//! one (never a mix) and a re-run completes it; a failed flush before the renames leaves every
//! file as it was; a failed flush after them is exit 1, not success. Needs `strace` (ignored
//! otherwise).

use std::collections::BTreeMap;
use std::fs;

use crate::sweep::{injected, traced};
use crate::testenv::{require, tree, TestEnv};

const FILES: usize = 12;

fn conf(i: usize) -> String {
    format!("etc/vmware/hostd/conf{i:02}.xml")
}

fn body(i: usize, version: &str) -> String {
    format!("<config id=\"{i}\" version=\"{version}\"/>\n").repeat(i + 1)
}

/// A source host whose archive holds the new version of every file, and a target root that
/// holds the old version of half of them (so the restore overwrites some and creates some).
fn scene() -> (TestEnv, TestEnv, String) {
    let source = TestEnv::new();
    for i in 0..FILES {
        source.flagged(&conf(i), &body(i, "new"));
    }
    source.run(&["backup"]).ok();
    let target = TestEnv::new();
    for i in (0..FILES).step_by(2) {
        target.flagged(&conf(i), &body(i, "old"));
    }
    let archive = source.state("bootbank").display().to_string();
    (source, target, archive)
}

/// The content of each restored path in `env`: `None` when absent.
fn contents(env: &TestEnv) -> BTreeMap<String, Option<String>> {
    (0..FILES)
        .map(|i| (conf(i), fs::read_to_string(env.path(&conf(i))).ok()))
        .collect()
}

fn count(log: &str, syscall: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("{syscall}(")))
        .count()
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn restore_and_extract_flush_with_syncfs_instead_of_a_fsync_per_file() {
    require("strace");
    let (_source, target, archive) = scene();
    let trace = "fsync,fdatasync,syncfs";
    let (out, log) = traced(&target, &["restore", &archive], trace, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let fsyncs = count(&log, "fsync") + count(&log, "fdatasync");
    // No restored file (nor the undo archive) is fsynced on its own: syncfs covers them all.
    assert!(
        fsyncs < FILES / 2,
        "{fsyncs} fsyncs for {FILES} files:\n{log}"
    );
    assert!(
        count(&log, "syncfs") >= 2,
        "no flush before and after:\n{log}"
    );
    let dir = target.dir.path().join("extracted");
    let dir = dir.to_str().unwrap();
    let (out, log) = traced(&target, &["extract", &archive, "--to", dir], trace, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A new directory is filled as a temp beside it: its files flushed by one syncfs, then
    // the one rename into place made durable by one fsync of the parent.
    assert_eq!(count(&log, "fsync") + count(&log, "fdatasync"), 1, "{log}");
    assert!(count(&log, "syncfs") >= 1, "{log}");
    assert!(
        log.find("syncfs(").unwrap_or(usize::MAX) < log.find(" fsync(").unwrap_or(0),
        "the files are flushed before the rename is:\n{log}"
    );
    assert_eq!(
        fs::read_to_string(format!("{dir}/{}", conf(3))).unwrap(),
        body(3, "new")
    );
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_restore_killed_at_any_rename_flush_or_write_leaves_each_file_old_or_new() {
    require("strace");
    let mut points = Vec::new();
    for syscall in ["renameat", "renameat2", "syncfs", "write", "fsync"] {
        let mut n = 1;
        loop {
            let (_source, target, archive) = scene();
            let (old, inject) = (
                contents(&target),
                format!("{syscall}:signal=SIGKILL:when={n}"),
            );
            let (out, log) = traced(&target, &["restore", &archive], syscall, Some(&inject));
            if !injected(&log) && out.code != -1 {
                assert_eq!(
                    out.code, 0,
                    "{inject}: not killed yet failed: {}",
                    out.stderr
                );
                break;
            }
            for (i, (path, now)) in contents(&target).into_iter().enumerate() {
                let new = Some(body(i, "new"));
                assert!(
                    now == old[&path] || now == new,
                    "{inject}: `{path}` is {now:?}"
                );
            }
            target.run(&["restore", &archive]).ok();
            let done: Vec<_> = (0..FILES).map(|i| Some(body(i, "new"))).collect();
            assert_eq!(
                contents(&target).into_values().collect::<Vec<_>>(),
                done,
                "{inject}"
            );
            n += 1;
        }
        points.push(format!("{syscall} {}", n - 1));
    }
    eprintln!("restore kill sweep: {}", points.join(", "));
    assert!(points
        .iter()
        .any(|p| p.starts_with("syncfs") && !p.ends_with(" 0")));
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_failed_flush_before_the_renames_changes_nothing_and_after_them_is_an_error() {
    require("strace");
    let (_source, target, archive) = scene();
    let before = tree(&target.root);
    let inject = "syncfs:error=EIO:when=1";
    let (out, _) = traced(&target, &["restore", &archive], "syncfs", Some(inject));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing under the root was changed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        tree(&target.root),
        before,
        "a failed first flush changed the root"
    );

    let (out, log) = traced(&target, &["restore", &archive], "syncfs", None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = count(&log, "syncfs");
    let (_source, target, archive) = scene();
    let inject = format!("syncfs:error=EIO:when={last}");
    let (out, _) = traced(&target, &["restore", &archive], "syncfs", Some(&inject));
    assert_eq!(
        out.code, 1,
        "a failed last flush reported success: {}",
        out.stdout
    );
    assert!(out.stderr.contains("power loss"), "{}", out.stderr);
}
