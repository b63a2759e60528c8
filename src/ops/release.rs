//! This host's release level, as `firmwareConfig.sh` knows it: the output of `vmware -l`
//! (`VMware ESXi 6.7.0 Update 3`: product, version and update level, no build number).
//!
//! Where `vmware` is not on `PATH` (a rescue system, a test), the release is derived from the
//! bank's `build` (`6.7.0-0.0.14320388` -> `VMware ESXi 6.7.0`): that names the version but
//! not the update level, so every use of it comes with a warning.

use std::process::{Command, Stdio};

/// Where this host's release level came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRelease {
    /// `vmware -l` output, trailing newlines removed (as `$(vmware -l)` does).
    Reported(String),
    /// Derived from the bank's build: `VMware ESXi <version triple>`.
    FromBuild(String),
}

impl HostRelease {
    /// This host's release: `vmware -l` where that runs, else derived from `build`.
    pub fn of_host(build: &str) -> HostRelease {
        match vmware_l() {
            Some(level) => HostRelease::Reported(level),
            None => HostRelease::FromBuild(release_of_build(build)),
        }
    }

    /// The `RELEASELEVEL` text.
    pub fn text(&self) -> &str {
        match self {
            HostRelease::Reported(text) | HostRelease::FromBuild(text) => text,
        }
    }
}

/// Runs `vmware -l`; `None` when it is not there or fails.
fn vmware_l() -> Option<String> {
    let output = Command::new("vmware")
        .arg("-l")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let level = text.trim_end_matches('\n').to_string();
    (!level.is_empty()).then_some(level)
}

/// `VMware ESXi <version triple>` of a bank build, or the build itself when it has no triple.
pub fn release_of_build(build: &str) -> String {
    match version_triple(build) {
        Some(triple) => format!("VMware ESXi {triple}"),
        None => build.to_string(),
    }
}

/// The first `N.N.N` version in `text` (`VMware ESXi 6.7.0 Update 3` -> `6.7.0`,
/// `7.0.3-0.20.19193900` -> `7.0.3`).
pub fn version_triple(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_come_from_release_levels_and_builds() {
        assert_eq!(version_triple("VMware ESXi 6.7.0 Update 3"), Some("6.7.0"));
        assert_eq!(version_triple("7.0.3-0.20.19193900"), Some("7.0.3"));
        assert_eq!(version_triple("VMware ESXi 7.0 Update 3"), None);
        assert_eq!(release_of_build("6.7.0-0.0.14320388"), "VMware ESXi 6.7.0");
        assert_eq!(release_of_build("custom"), "custom");
    }
}
