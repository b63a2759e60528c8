//! Running processes for the benchmark: wall time (median of N, after a warm-up run) and peak
//! resident memory, both taken from the child itself (`wait4`'s rusage), so baselines and
//! statectl are measured the same way: process against process.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One finished run: wall time and peak RSS in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub wall: Duration,
    pub max_rss_kib: u64,
}

/// Runs `cmd` once; panics (the benchmark is void) when it fails. The child is reaped by
/// `wait4` itself (std's `wait` would lose the rusage).
#[allow(clippy::zombie_processes)]
pub fn run_once(cmd: &mut Command) -> Run {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain wait4 on our own child with valid out-pointers.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(got, pid, "wait4 failed for {cmd:?}");
    let status = std::process::ExitStatus::from_raw(status);
    if !status.success() {
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr {
            use std::io::Read;
            let _ = stderr.read_to_string(&mut err);
        }
        panic!("{cmd:?} failed ({status}): {err}");
    }
    Run {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

/// Median wall time of `runs` runs after one warm-up run; `prepare` runs before each one.
pub fn median(runs: usize, mut prepare: impl FnMut(), mut make: impl FnMut() -> Command) -> Run {
    prepare();
    run_once(&mut make());
    let mut all: Vec<Run> = (0..runs)
        .map(|_| {
            prepare();
            run_once(&mut make())
        })
        .collect();
    all.sort_by_key(|r| r.wall);
    let max_rss_kib = all.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
    Run {
        wall: all[all.len() / 2].wall,
        max_rss_kib,
    }
}

/// `sh -c script` with positional arguments.
pub fn shell(script: &str, args: &[&std::path::Path]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    cmd
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
