//! Which host files a run reads. Detection opens a persisted file only when its content decides
//! whether it changed: the stat cache does not vouch for it and its archived record has the same
//! size, mode, owner and mtime (any other file is added or modified whatever it holds). So a
//! `status` with no archive reads nothing, a first backup reads each file once (in the writer),
//! and a file whose mode changed is not read to learn that. Needs `strace` (ignored otherwise).

use std::fs;

use crate::sweep::traced;
use crate::testenv::{require, TestEnv};

const FILES: [&str; 3] = ["etc/a.conf", "etc/b.conf", "etc/c.conf"];

/// How many times the run logged in `log` opened `rel` of `env` successfully: by its path,
/// or by its name relative to a directory descriptor (the in-root walk's `openat`).
fn opens(env: &TestEnv, log: &str, rel: &str) -> usize {
    let quoted = format!("{}\"", env.path(rel).display());
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let relative = format!(", \"{name}\",");
    log.lines()
        .filter(|l| l.contains("open") && !l.contains("= -1"))
        .filter(|l| l.contains(&quoted) || l.contains(&relative))
        .count()
}

fn opens_of_each(env: &TestEnv, args: &[&str]) -> (i32, Vec<usize>) {
    let (out, log) = traced(env, args, "open,openat", None);
    let counts = FILES.iter().map(|rel| opens(env, &log, rel)).collect();
    (out.code, counts)
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn detection_reads_a_file_only_when_its_content_decides() {
    require("strace");
    let env = TestEnv::new();
    for rel in FILES {
        env.flagged(rel, &format!("{rel} v1\n"));
    }
    assert_eq!(opens_of_each(&env, &["status"]), (3, vec![0, 0, 0]));
    assert_eq!(opens_of_each(&env, &["backup"]), (0, vec![1, 1, 1]));
    // No cache (as after a reboot); b's mode changes, c's content changes at the same size and
    // mtime: a and c must be read to compare them, b need not be.
    fs::remove_dir_all(&env.run_dir).unwrap();
    env.file("etc/b.conf", None, 0o1600);
    env.file("etc/c.conf", Some("etc/c.conf v2\n"), 0o1644);
    assert_eq!(opens_of_each(&env, &["status"]), (3, vec![1, 0, 1]));
    let json = env.run(&["--json", "status"]).json();
    assert_eq!(
        json["modified"],
        serde_json::json!(["etc/b.conf", "etc/c.conf"])
    );
    // The cache now vouches for a; c (modified) is read again, b never.
    assert_eq!(opens_of_each(&env, &["status"]), (3, vec![0, 0, 1]));
}
