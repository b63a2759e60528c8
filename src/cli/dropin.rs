//! Drop-in names: the binary linked as ESXi's `/sbin/auto-backup.sh` or `/sbin/backup.sh`
//! takes those scripts' arguments, so crontab, inittab and hostd's triggers keep working.
//!
//! - `auto-backup.sh [ARGS...]` runs `statectl backup [ARGS...]`: ESXi calls it without
//!   arguments, and any statectl option (`-v`, `--dry-run`, `--root DIR`...) passes through.
//! - `backup.sh is_shutdown [bootbank] [ARGS...]`: `0` is `statectl backup`, `1` is
//!   `statectl backup --shutdown`, a `bootbank` directory becomes `--bank DIR`; later
//!   arguments pass through. No argument prints the 6.7 script's usage line
//!   (`Usage: <name> IsShutdown [PATH_NAME]`, exit 0, as the script does); any other
//!   `is_shutdown` is `Invalid parameter for is_shutdown: X`, exit 1.
//!
//! Any other program name is plain `statectl`.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The 6.7 `backup.sh` usage line, for the name it was invoked as (its `${0}`).
pub fn backup_sh_usage(invoked_as: &OsStr) -> String {
    format!(
        "Usage: {} IsShutdown [PATH_NAME]",
        invoked_as.to_string_lossy()
    )
}

/// What the program name makes of the arguments.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run statectl with these arguments (the first is the program name).
    Statectl(Vec<OsString>),
    /// The script's own refusal: print this line on stderr and exit 1.
    Refuse(String),
    /// The script's usage line: print it on stderr and exit 0.
    Usage(String),
}

/// Rewrites the arguments of a drop-in invocation into statectl's own.
pub fn translate(args: Vec<OsString>) -> Invocation {
    let name = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    match name.to_str() {
        Some("auto-backup.sh") => Invocation::Statectl(backup_with(Vec::new(), &args[1..])),
        Some("backup.sh") => backup_sh(&args[0], &args[1..]),
        _ => Invocation::Statectl(args),
    }
}

fn backup_sh(invoked_as: &OsStr, rest: &[OsString]) -> Invocation {
    let Some(is_shutdown) = rest.first() else {
        return Invocation::Usage(backup_sh_usage(invoked_as));
    };
    let mut flags: Vec<OsString> = match is_shutdown.to_str() {
        Some("0") => Vec::new(),
        Some("1") => vec!["--shutdown".into()],
        _ => {
            return Invocation::Refuse(format!(
                "Invalid parameter for is_shutdown: {}",
                is_shutdown.to_string_lossy()
            ))
        }
    };
    let mut rest = &rest[1..];
    if let Some(dir) = rest
        .first()
        .filter(|a| !a.as_encoded_bytes().starts_with(b"-"))
    {
        flags.push("--bank".into());
        flags.push(dir.clone());
        rest = &rest[1..];
    }
    Invocation::Statectl(backup_with(flags, rest))
}

fn backup_with(flags: Vec<OsString>, passed: &[OsString]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["statectl".into(), "backup".into()];
    args.extend(flags);
    args.extend(passed.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Invocation {
        translate(args.iter().map(OsString::from).collect())
    }

    fn statectl(args: &[&str]) -> Invocation {
        Invocation::Statectl(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn other_names_are_plain_statectl() {
        assert_eq!(
            run(&["/usr/bin/statectl", "status"]),
            statectl(&["/usr/bin/statectl", "status"])
        );
        assert_eq!(run(&["x-backup.sh"]), statectl(&["x-backup.sh"]));
    }

    #[test]
    fn auto_backup_is_backup_with_passed_options() {
        assert_eq!(
            run(&["/sbin/auto-backup.sh"]),
            statectl(&["statectl", "backup"])
        );
        assert_eq!(
            run(&["auto-backup.sh", "-v"]),
            statectl(&["statectl", "backup", "-v"])
        );
    }

    #[test]
    fn backup_sh_takes_esxi_arguments() {
        assert_eq!(
            run(&["/sbin/backup.sh", "0"]),
            statectl(&["statectl", "backup"])
        );
        assert_eq!(
            run(&["/bin/backup.sh", "1"]),
            statectl(&["statectl", "backup", "--shutdown"])
        );
        assert_eq!(
            run(&["backup.sh", "0", "/altbootbank", "-q"]),
            statectl(&["statectl", "backup", "--bank", "/altbootbank", "-q"])
        );
        assert_eq!(
            run(&["backup.sh", "1", "-v"]),
            statectl(&["statectl", "backup", "--shutdown", "-v"])
        );
    }

    #[test]
    fn backup_sh_refuses_like_esxi() {
        assert_eq!(
            run(&["/sbin/backup.sh"]),
            Invocation::Usage("Usage: /sbin/backup.sh IsShutdown [PATH_NAME]".into())
        );
        assert_eq!(
            run(&["backup.sh", "yes"]),
            Invocation::Refuse("Invalid parameter for is_shutdown: yes".into())
        );
    }
}
