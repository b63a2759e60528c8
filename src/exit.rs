//! The process exit codes of the contract, in one place.
//!
//! docs/reference.md ("Exit status") fixes them; README and the man page mirror this table, and
//! `bank check` uses its own monitoring codes (see `Monitoring`).

/// Exit status of every command except `bank check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; for `backup` also "nothing changed"; for `status`, in sync.
    Success = 0,
    /// Failure, reported as one line on stderr.
    Failure = 1,
    /// Command-line usage error.
    Usage = 2,
    /// `status` and `diff`: changes are pending.
    Pending = 3,
    /// Another run held the bank lock for longer than `--wait`.
    LockBusy = 4,
}

/// Exit status of `bank check`, in the Nagios plugin convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Monitoring {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl From<Exit> for std::process::ExitCode {
    fn from(code: Exit) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

impl From<Monitoring> for std::process::ExitCode {
    fn from(code: Monitoring) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract() {
        assert_eq!(Exit::Success as u8, 0);
        assert_eq!(Exit::Failure as u8, 1);
        assert_eq!(Exit::Usage as u8, 2);
        assert_eq!(Exit::Pending as u8, 3);
        assert_eq!(Exit::LockBusy as u8, 4);
        assert_eq!(Monitoring::Unknown as u8, 3);
    }
}
