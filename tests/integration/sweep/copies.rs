//! A kill sweep over `backup --copy-to` (as `crash` does for backup): SIGKILL (strace) at every
//! invocation of every syscall that can leave something on disk, N = 1, 2, ... until a run gets
//! past them all. After each kill: every bundle in the host's copy directory is complete and
//! readable (no torn bundle under a bundle's name), and the next run leaves the right set: the
//! newest two copies, the newest holding the bank's archive, nothing else (no temp). Needs
//! `strace` (ignored otherwise).

use std::fs;

use crate::copies::{fleet_host, names, text, T0};
use crate::encrypted::member;
use crate::sweep::{injected, traced_command};
use crate::testenv::require;

/// Every syscall through which the copy step can leave something on disk.
const SYSCALLS: &[&str] = &[
    "openat",
    "write",
    "fsync",
    "mkdir",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
];

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn a_kill_anywhere_in_the_copy_step_leaves_no_torn_bundle_and_the_next_run_fixes_the_set() {
    require("strace");
    // Every invocation of each syscall, SQLite-style: N = 1, 2, ... until a run gets past all.
    let mut kills = 0;
    for syscall in SYSCALLS {
        let mut n = 1;
        while kill_once(syscall, n) {
            kills += 1;
            n += 1;
        }
    }
    eprintln!("copy sweep: {kills} kills");
    assert!(kills > 60, "only {kills} runs were killed");
}

/// A host with two copies (keep 2) and a pending change, its `backup --copy-to` killed at
/// `syscall` invocation `n`; false when the run never got there.
fn kill_once(syscall: &str, n: usize) -> bool {
    let env = fleet_host(4);
    let store = env.dir.path().join("store");
    fs::create_dir(&store).unwrap();
    let dir = store.join("uuid-04");
    let run = |now: i64| {
        env.command(&["-q", "backup", "--copy-to", text(&store), "--keep", "2"])
            .env("STATECTL_NOW", now.to_string())
            .output()
            .unwrap()
    };
    for round in 0..2 {
        env.flagged("etc/hosts", &format!("round {round}\n"));
        assert!(run(T0 + round * 60).status.success());
    }
    env.flagged("etc/hosts", "killed round\n");
    let inject = format!("{syscall}:signal=SIGKILL:when={n}");
    let now = (T0 + 120).to_string();
    let args = ["-q", "backup", "--copy-to", text(&store), "--keep", "2"];
    let mut inner = env.command(&args);
    inner.env("STATECTL_NOW", &now);
    let (out, log) = traced_command(&env, inner, syscall, Some(&inject));
    let what = format!("killed at {inject}");
    let killed = injected(&log) || out.code == -1;
    // Whatever the kill left: every bundle there is complete and readable.
    for name in names(&dir)
        .iter()
        .filter(|n| n.starts_with("configBundle-"))
    {
        member(&dir.join(name), "state.tgz");
    }
    let history = env.run(&["--json", "history", text(&store)]).ok().json();
    assert_eq!(history["warnings"], serde_json::json!([]), "{what}");
    // The next run leaves the right set: the two newest, the newest holding the bank's state.
    let out = run(T0 + 180);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = names(&dir);
    assert_eq!(left.len(), 2, "{what}: {left:?}");
    assert!(
        left.iter().all(|n| n.starts_with("configBundle-esx04-")),
        "{what}: {left:?}"
    );
    let bank = fs::read(env.state("bootbank")).unwrap();
    assert_eq!(member(&dir.join(&left[1]), "state.tgz"), bank, "{what}");
    killed
}
