//! Which banks a backup (or `bank sync`) writes, and what each one's archive must leave out.
//!
//! The `backup` contract (docs/reference.md): the bootbank (the running system) always. When the loader will boot
//! the altbootbank next and an upgrade is staged there (its `updated` higher, `bootstate` 0 or 1,
//! its build the same as the running one or newer), that bank is written too, with its own build
//! in its manifest and without the paths ESXi lists in `/var/run/configblacklist` (as
//! `backup.sh` does at shutdown). A next-boot altbootbank holding an *older* build is a rollback
//! target: its archive is the state that build ran with, and a running newer system never
//! overwrites it (a warning; `--bank` writes it on purpose).
//!
//! `configblacklist`: we read it as `backup.sh` hands it to `tar -X`: one path per line,
//! relative to the root (a leading `/` is dropped), blank lines and `#` lines ignored; a line is
//! a glob pattern (`*`, `?`, `[...]`) or a path, and a path that names a directory covers every
//! file under it. (The format is not published; this is our reading, documented in README.)

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};

use super::{next_boot, Bank, BankName, Banks};

/// Where ESXi lists the paths an upgraded bank's archive must not carry, under the root.
pub const CONFIG_BLACKLIST: &str = "var/run/configblacklist";

/// The relation of the altbootbank to the running system, as `bank check` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AltRole {
    /// The altbootbank does not boot next.
    Fallback,
    /// Boots next, `bootstate=1`, same or newer build: an upgrade waits for a reboot.
    UpgradeStaged,
    /// Boots next, `bootstate=0`, same or newer build: switched by hand (`bank set-next`).
    ManualSwitch,
    /// Boots next with an older build: a rollback target.
    RollbackTarget,
    /// Boots next, builds not comparable (a warning; not written).
    Unknown,
}

/// Numeric components of a build (`7.0.3-0.20.19193900` -> 7,0,3,0,20,19193900).
fn build_numbers(build: &str) -> Vec<u64> {
    build
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// Orders two builds by their numbers; `None` when they differ and either has none.
pub fn compare_builds(a: &str, b: &str) -> Option<Ordering> {
    if a == b {
        return Some(Ordering::Equal);
    }
    let (x, y) = (build_numbers(a), build_numbers(b));
    if x.is_empty() || y.is_empty() {
        return None;
    }
    Some(x.cmp(&y))
}

/// What the altbootbank is to the running system.
pub fn alt_role(banks: &Banks) -> AltRole {
    if next_boot(banks) != Some(BankName::Altbootbank) {
        return AltRole::Fallback;
    }
    let alt = &banks.altbootbank;
    let running = banks.bootbank.build().unwrap_or_default();
    match compare_builds(alt.build().unwrap_or_default(), running) {
        Some(Ordering::Less) => AltRole::RollbackTarget,
        Some(_) if alt.bootstate() == Some(1) => AltRole::UpgradeStaged,
        Some(_) => AltRole::ManualSwitch,
        None => AltRole::Unknown,
    }
}

/// One bank to write.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: PathBuf,
    /// The build its manifest records: this bank's own.
    pub build: String,
    /// Paths its archive leaves out (ESXi's configblacklist), empty for the bootbank.
    pub blacklist: Blacklist,
}

/// The targets of a backup without `--bank`, the bootbank first, and warnings.
pub fn backup_targets(banks: &Banks, root: &Path) -> (Vec<Target>, Vec<String>) {
    let own = |bank: &Bank, blacklist| Target {
        path: bank.path.clone(),
        build: bank.build().unwrap_or_default().to_string(),
        blacklist,
    };
    let mut targets = vec![own(&banks.bootbank, Blacklist::default())];
    let mut warnings = Vec::new();
    let alt = &banks.altbootbank;
    match alt_role(banks) {
        AltRole::Fallback => {}
        AltRole::UpgradeStaged | AltRole::ManualSwitch => {
            let (blacklist, warning) = Blacklist::load(root);
            warnings.extend(warning);
            targets.push(own(alt, blacklist));
        }
        role => warnings.push(format!(
            "altbootbank `{}` boots next with build {}, {} the running build {}: {}; its \
             state.tgz is not overwritten (name it with --bank to write it on purpose)",
            alt.path.display(),
            alt.build().unwrap_or("-"),
            if role == AltRole::RollbackTarget {
                "older than"
            } else {
                "not comparable with"
            },
            banks.bootbank.build().unwrap_or("-"),
            if role == AltRole::RollbackTarget {
                "a rollback target keeps the state its build ran with"
            } else {
                "statectl cannot tell an upgrade from a rollback"
            }
        )),
    }
    (targets, warnings)
}

/// The largest `configblacklist` read (ESXi's lists a few dozen paths).
const MAX_BLACKLIST_BYTES: u64 = 1 << 20;

/// The configblacklist patterns.
#[derive(Debug, Clone, Default)]
pub struct Blacklist {
    entries: Vec<(String, Option<GlobMatcher>)>,
}

impl Blacklist {
    /// Reads `<root>/var/run/configblacklist`; absent is empty, unreadable a warning.
    pub fn load(root: &Path) -> (Blacklist, Option<String>) {
        let path = root.join(CONFIG_BLACKLIST);
        let read = crate::fs::hostfile::read_bounded(&path, MAX_BLACKLIST_BYTES);
        match read.map(|bytes| bytes.map(|b| String::from_utf8_lossy(&b).into_owned())) {
            Ok(Some(text)) => (Blacklist::parse(&text), None),
            Ok(None) => (Blacklist::default(), None),
            Err(err) => (
                Blacklist::default(),
                Some(format!(
                    "cannot read `{}` ({err:#}); the upgraded bank's archive skips nothing",
                    path.display()
                )),
            ),
        }
    }

    pub fn parse(text: &str) -> Blacklist {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let path = line.trim_start_matches("./").trim_start_matches('/');
                let path = path.trim_end_matches('/').to_string();
                let glob = Glob::new(&path).ok().map(|g| g.compile_matcher());
                (path, glob)
            })
            .collect();
        Blacklist { entries }
    }

    /// True when root-relative `path` is listed (itself, under a listed directory, or by glob).
    pub fn covers(&self, path: &str) -> bool {
        self.entries.iter().any(|(entry, glob)| {
            path == entry
                || path
                    .strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
                || glob.as_ref().is_some_and(|g| g.is_match(path))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_order_by_their_numbers() {
        use Ordering::*;
        assert_eq!(
            compare_builds("7.0.3-0.20.19193900", "8.0.0-1.0.20513097"),
            Some(Less)
        );
        assert_eq!(compare_builds("8.0.0", "8.0.0"), Some(Equal));
        assert_eq!(
            compare_builds("7.0.3-0.95.23794027", "7.0.3-0.20.19193900"),
            Some(Greater)
        );
        assert_eq!(compare_builds("b", "c"), None);
    }

    #[test]
    fn the_blacklist_covers_paths_directories_and_globs() {
        let list = Blacklist::parse("# ESXi\n/etc/vmware/esx.conf\netc/ssh/\netc/*.bak\n\n");
        assert!(list.covers("etc/vmware/esx.conf"));
        assert!(list.covers("etc/ssh/ssh_host_rsa_key"));
        assert!(list.covers("etc/hosts.bak"));
        assert!(!list.covers("etc/sshd"));
        assert!(!list.covers("etc/hosts"));
    }
}
