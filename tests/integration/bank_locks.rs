//! The lock discipline over both banks (issue 12): concurrent `set-next` calls never end tied,
//! and ESXi's own PID lock `<root>/tmp/<bank>.lck` is waited for when live (exit 4 after
//! `--wait`), broken when stale, and never left behind.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::testenv::{outcome, TestEnv};

#[test]
fn eight_concurrent_set_next_calls_in_both_directions_never_end_tied() {
    let env = TestEnv::new();
    for round in 0..3 {
        let children: Vec<Child> = (0..8)
            .map(|n| {
                let bank = if (n + round) % 2 == 0 {
                    "altbootbank"
                } else {
                    "bootbank"
                };
                env.command(&["bank", "set-next", bank, "--wait", "30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            outcome(child.wait_with_output().unwrap()).ok();
        }
        let status = env.run(&["bank", "status", "--json"]).ok().json();
        assert_eq!(status["tie"], false, "round {round}: {status}");
        let (boot, alt) = (
            &status["banks"][0]["updated"],
            &status["banks"][1]["updated"],
        );
        assert_ne!(boot, alt, "round {round}: {status}");
        assert!(status["next_boot"].is_string(), "{status}");
    }
}

/// A live process whose PID can stand for an ESXi tool holding a lock.
fn holder() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

fn lock_file(env: &TestEnv, bank: &str) -> std::path::PathBuf {
    fs::create_dir_all(env.path("tmp")).unwrap();
    env.path(&format!("tmp/{bank}.lck"))
}

/// A host whose `tmp/bootbank.lck` names a live process (the returned child).
fn held_bootbank_lock(env: &TestEnv) -> (Child, std::path::PathBuf) {
    let tool = holder();
    let lock = lock_file(env, "bootbank");
    fs::write(&lock, format!("{}\n", tool.id())).unwrap();
    (tool, lock)
}

#[test]
fn a_live_esxi_lock_makes_writers_wait_then_exit_4() {
    let env = TestEnv::esxi();
    let (mut tool, lock) = held_bootbank_lock(&env);
    let started = std::time::Instant::now();
    let busy = env.run(&["backup", "--wait", "1"]).code(4);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert!(busy.stderr.contains("bootbank.lck"), "{}", busy.stderr);
    assert!(
        busy.stderr.contains(&tool.id().to_string()),
        "{}",
        busy.stderr
    );
    assert!(!env.state("bootbank").exists());
    let alt = lock_file(&env, "altbootbank");
    fs::rename(&lock, &alt).unwrap();
    env.run(&["bank", "set-next", "altbootbank", "--wait", "1"])
        .code(4);
    assert_eq!(
        fs::read_to_string(&alt).unwrap(),
        format!("{}\n", tool.id())
    );
    tool.kill().unwrap();
    tool.wait().unwrap();
    // The holder is dead now: its PID file is stale, broken, and not left behind.
    env.run(&["bank", "set-next", "altbootbank", "--wait", "1"])
        .ok();
    assert!(!alt.exists());
}

/// True while another process holds statectl's `flock` on one of the bank lock files in
/// `run_dir` (a probe that gets the lock closes it at once, letting go).
fn a_bank_lock_is_held(run_dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return false;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("bank-"))
        .any(|entry| {
            let Ok(file) = fs::File::open(entry.path()) else {
                return false;
            };
            // SAFETY: flock on a descriptor this function owns; closing it releases the lock.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
        })
}

#[test]
fn a_writer_waits_for_a_live_holder_that_lets_go() {
    let env = TestEnv::esxi();
    let (mut tool, lock) = held_bootbank_lock(&env);
    let mut backup = env
        .command(&["backup", "--wait", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Started before the release: the backup holds its bank locks, which it takes just before
    // ESXi's, and is still running with no archive written well after that.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a_bank_lock_is_held(&env.run_dir) {
        assert!(
            backup.try_wait().unwrap().is_none(),
            "backup ended unlocked"
        );
        assert!(Instant::now() < deadline, "backup never took its bank lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(backup.try_wait().unwrap().is_none(), "backup did not wait");
    assert!(!env.state("bootbank").exists(), "backup did not wait");
    // The release, dated by the filesystem's own clock (the one the archive's mtime comes from).
    let marker = env.dir.path().join("released");
    fs::write(&marker, "").unwrap();
    let released = fs::metadata(&marker).unwrap().modified().unwrap();
    fs::remove_file(&lock).unwrap();
    tool.kill().unwrap();
    tool.wait().unwrap();
    // Ended after it: the archive was written after the release, then the run exited 0.
    outcome(backup.wait_with_output().unwrap()).ok();
    let written = fs::metadata(env.state("bootbank"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(written >= released, "the archive predates the release");
    assert!(!lock.exists());
}

#[test]
fn a_stale_esxi_lock_is_broken_and_none_is_left_behind_even_on_failure() {
    let env = TestEnv::esxi();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let lock = lock_file(&env, "bootbank");
    fs::write(&lock, format!("{dead}\n")).unwrap();
    env.run(&["backup", "--wait", "1"]).ok();
    assert!(env.state("bootbank").exists());
    assert!(!lock.exists());
    fs::write(
        env.path("etc/statectl.toml"),
        "required = [\"etc/missing.conf\"]\n",
    )
    .unwrap();
    let failed = env.run(&["backup", "--force"]).code(1);
    assert!(
        failed.stderr.contains("etc/missing.conf"),
        "{}",
        failed.stderr
    );
    let left: Vec<_> = fs::read_dir(env.path("tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
