//! The few process calls statectl makes, through rustix's safe wrappers: whether a PID still
//! names a process (stale temp files and ESXi's PID lock of a dead run are removed, a live
//! one's never) and which user the run has (restore sets owners only as root; the run
//! directory must be ours).

use rustix::io::Errno;
use rustix::process::{getegid, geteuid, test_kill_process, Pid};

/// True when a process `pid` exists: signal 0 sends nothing, and EPERM means it exists but
/// belongs to another user. 0 and PIDs beyond the kernel's range name no process.
pub fn is_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .filter(|pid| *pid > 0)
        .and_then(Pid::from_raw)
    else {
        return false;
    };
    match test_kill_process(pid) {
        Ok(()) => true,
        Err(err) => err == Errno::PERM,
    }
}

/// The effective user id of this run.
pub fn effective_uid() -> u32 {
    geteuid().as_raw()
}

/// The effective group id of this run.
pub fn effective_gid() -> u32 {
    getegid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_no_pid_zero_or_out_of_range_is() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(0));
        assert!(!is_alive(u32::MAX));
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }
}
