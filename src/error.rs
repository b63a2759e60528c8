//! Typed errors for the cases a caller must tell apart; everything else is `anyhow` with context.
//!
//! Rules: every I/O error carries the path it concerns and, where there is one, what to do about it.
//! A typed error exists only when the exit code or the caller's behaviour depends on it.

use std::path::PathBuf;

use crate::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "bank `{bank}` is locked by another statectl run (waited {waited_secs} s); \
         try again later or raise --wait"
    )]
    LockBusy { bank: PathBuf, waited_secs: u64 },

    #[error(
        "root `{root}` is locked by another statectl run (a restore writing it, or a backup \
         reading it; waited {waited_secs} s); try again later or raise --wait"
    )]
    RootBusy { root: PathBuf, waited_secs: u64 },

    #[error(
        "bank lock `{lock}` is held by ESXi process {pid} (backup.sh or BootModuleConfig.sh; \
         waited {waited_secs} s); try again later or raise --wait"
    )]
    EsxiLockBusy {
        lock: PathBuf,
        pid: u32,
        waited_secs: u64,
    },

    #[error("archive `{archive}` is refused: {reason}")]
    UnsafeArchive { archive: PathBuf, reason: String },

    #[error("cannot read archive `{archive}`: {reason}")]
    BadArchive { archive: PathBuf, reason: String },

    #[error("`{path}` changed while it was being archived; run the command again")]
    FileChanged { path: PathBuf },

    #[error(
        "boot.cfg `{path}` cannot be parsed: {reason}; fix it by hand (statectl never rewrites it)"
    )]
    BadBootCfg { path: PathBuf, reason: String },
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::LockBusy { .. } | Error::RootBusy { .. } | Error::EsxiLockBusy { .. } => {
                Exit::LockBusy
            }
            _ => Exit::Failure,
        }
    }
}

/// The exit status for any error chain: a typed error anywhere in it decides, else failure.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(Exit::Failure, Error::exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn lock_busy_maps_to_four_even_under_context() {
        let err = Err::<(), _>(Error::LockBusy {
            bank: "/b".into(),
            waited_secs: 1,
        })
        .context("backup failed")
        .unwrap_err();
        assert_eq!(exit_for(&err), Exit::LockBusy);
    }

    #[test]
    fn untyped_errors_are_failures() {
        assert_eq!(exit_for(&anyhow::anyhow!("boom")), Exit::Failure);
    }
}
