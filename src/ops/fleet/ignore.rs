//! What `drift` leaves out: files that are per-host by nature, the `esx.conf` keys that are a
//! host's identity, and the globs given with `--ignore` (a path glob, or with a leading `/` an
//! `esx.conf` key glob).

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Files ignored by default: per-host by nature (keys, certificates, seeds, leases, counters,
/// the ConfigStore database).
pub const DEFAULT_IGNORED: [&str; 7] = [
    "etc/ssh/*key*",
    "etc/vmware/ssl/*",
    "etc/random-seed",
    "etc/dhclient*.leases",
    "etc/vmware/.backup.counter",
    "var/lib/vmware/configstore/**",
    "etc/vmware/configstore/**",
];

/// `esx.conf` keys that are a host's identity (`[*]` stands for any child index; a trailing
/// `*` for any rest of the key).
pub const IDENTITY_KEYS: [&str; 6] = [
    "/system/uuid",
    "/adv/Misc/HostName",
    "/adv/Misc/HostIPAddr",
    "/adv/Net/ManagementAddr",
    "/net/vmkernelnic/child[*]/ipv4*",
    "/net/pnic/child[*]/mac",
];

/// The default and the given ignore globs: paths, and `esx.conf` keys.
pub struct Ignored {
    paths: GlobSet,
    keys: GlobSet,
}

impl Ignored {
    pub fn new(extra: &[String]) -> Result<Ignored> {
        let mut paths = GlobSetBuilder::new();
        let mut keys = GlobSetBuilder::new();
        let defaults = DEFAULT_IGNORED.iter().map(|p| p.to_string());
        for pattern in defaults.chain(extra.iter().cloned()) {
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .with_context(|| format!("bad --ignore pattern `{pattern}`; fix the glob"))?;
            if pattern.starts_with('/') {
                keys.add(glob);
            } else {
                paths.add(glob);
            }
        }
        Ok(Ignored {
            paths: paths
                .build()
                .context("cannot compile the --ignore patterns")?,
            keys: keys
                .build()
                .context("cannot compile the --ignore patterns")?,
        })
    }

    pub fn path(&self, path: &str) -> bool {
        self.paths.is_match(path)
    }

    pub fn key(&self, key: &str) -> bool {
        is_identity_key(key) || self.keys.is_match(key)
    }
}

/// True for an identity key of [`IDENTITY_KEYS`].
pub fn is_identity_key(key: &str) -> bool {
    let mut general = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        general.push_str(&rest[..open]);
        general.push_str("[*]");
        rest = &rest[open + close + 1..];
    }
    general.push_str(rest);
    IDENTITY_KEYS
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) if !pattern.ends_with("[*]") => general.starts_with(prefix),
            _ => general == *pattern,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_match_any_child() {
        for key in [
            "/system/uuid",
            "/adv/Misc/HostName",
            "/net/vmkernelnic/child[0000]/ipv4address",
            "/net/vmkernelnic/child[0001]/ipv4netmask",
            "/net/pnic/child[0003]/mac",
        ] {
            assert!(is_identity_key(key), "{key}");
        }
        for key in [
            "/adv/Misc/LogHost",
            "/net/pnic/child[0003]/name",
            "/net/pnic/child[0003]/mac2",
            "/system/uuidx",
            "/net/vmkernelnic/child[0000]/ipv6address",
        ] {
            assert!(!is_identity_key(key), "{key}");
        }
    }

    #[test]
    fn per_host_files_are_ignored_and_extra_globs_split_paths_from_keys() {
        let ignored = Ignored::new(&["etc/motd".into(), "/adv/UserVars/*".into()]).unwrap();
        for path in [
            "etc/ssh/ssh_host_rsa_key",
            "etc/vmware/ssl/rui.crt",
            "etc/dhclient-vmk0.leases",
            "var/lib/vmware/configstore/backup/current-store-1",
            "etc/motd",
        ] {
            assert!(ignored.path(path), "{path}");
        }
        assert!(!ignored.path("etc/ntp.conf"));
        assert!(
            !ignored.path("etc/vmware/ssl/sub/x"),
            "`*` stays in one directory"
        );
        assert!(ignored.key("/adv/UserVars/Foo") && !ignored.key("/adv/Syslog/global/logHost"));
    }
}
