//! `drift DIR`: compares the newest copy of every host in a copy store and reports, for each
//! persisted file two or more hosts hold, the groups of hosts by content; `esx.conf` is compared
//! key by key, leaving out the keys that are a host's identity, and files that are per-host by
//! nature are ignored, so hosts set up alike agree.
//!
//! Only each host's newest copy is read, through the hardened bundle reader, and nothing of it
//! is kept but tallies: per path, the hosts (as indexes) per content digest, and per `esx.conf`
//! key, the hosts per value. Memory grows with the distinct paths, keys and values, not with
//! the hosts times their files. A copy the reader refuses is a warning; that host is left out
//! and the others are compared.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::ignore::Ignored;
use super::store::{copies_in, host_dirs};
use crate::archive::bundle::read_bundle;
use crate::archive::{InnerEntry, Limits, Visitor};
use crate::ops::archive_path::shown;

const ESX_CONF: &str = "etc/vmware/esx.conf";
/// Largest `esx.conf` compared key by key (a real one is tens of KiB); a larger one is
/// compared as a whole file.
const MAX_ESX_CONF: u64 = 8 << 20;

/// The hosts compared.
#[derive(Debug, Clone, Serialize)]
pub struct DriftHost {
    pub id: String,
    pub name: String,
    pub copy: PathBuf,
    /// UTC, ISO 8601.
    pub time: String,
}

/// What a group of hosts holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Content {
    #[serde(rename = "sha256")]
    Sha256(String),
    /// An `esx.conf` value; `None`: the key is not set there.
    #[serde(rename = "value")]
    Value(Option<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftGroup {
    /// Host ids, sorted.
    pub hosts: Vec<String>,
    #[serde(flatten)]
    pub content: Content,
}

/// A file (or an `esx.conf` key) the hosts do not agree on; the largest group first.
#[derive(Debug, Clone, Serialize)]
pub struct DriftItem {
    pub path: String,
    pub key: Option<String>,
    pub groups: Vec<DriftGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub hosts: Vec<DriftHost>,
    pub drift: Vec<DriftItem>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Compares the newest copies in `store`; `ignore`: path globs (or, with a leading `/`,
/// `esx.conf` key globs) left out besides the defaults.
pub fn drift(store: &Path, ignore: &[String], limits: &Limits) -> Result<DriftReport> {
    let ignored = Ignored::new(ignore)?;
    let (dirs, mut warnings) = host_dirs(store)?;
    let mut hosts = Vec::new();
    let mut tally = Tally::default();
    for (id, dir) in dirs {
        let newest = match copies_in(&dir) {
            Ok(mut copies) => copies.pop(),
            Err(err) => {
                warnings.push(format!("{err:#}; host `{id}` was left out"));
                continue;
            }
        };
        let Some(newest) = newest else {
            warnings.push(format!("`{}` holds no copy", dir.display()));
            continue;
        };
        let mut conf = EsxConf::default();
        let read = match read_bundle(&newest.path, limits, &mut conf) {
            Ok(read) => read,
            Err(err) => {
                warnings.push(format!("copy refused, host `{id}` left out: {err:#}"));
                continue;
            }
        };
        let index = hosts.len() as u32;
        let name = read
            .state
            .manifest
            .map(|labels| labels.host)
            .filter(|host| !host.is_empty())
            .unwrap_or(newest.host);
        for record in read.state.files.iter() {
            if ignored.path(record.path) {
                continue;
            }
            match (&conf.text, record.path == ESX_CONF) {
                (Some(text), true) => tally.esx_conf(index, text, &ignored),
                _ => tally.file(index, record.path, record.sha256),
            }
        }
        hosts.push(DriftHost {
            id,
            name,
            copy: shown(&newest.path),
            time: crate::clock::utc_iso(newest.time),
        });
    }
    let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    let drift = tally.drift(&ids);
    Ok(DriftReport {
        hosts,
        drift,
        warnings,
    })
}

/// Keeps the text of `etc/vmware/esx.conf` while the reader checks the whole archive.
#[derive(Default)]
struct EsxConf {
    text: Option<String>,
}

impl Visitor for EsxConf {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        if entry.path.as_deref() != Ok(ESX_CONF) || entry.meta.size > MAX_ESX_CONF {
            return Ok(());
        }
        let mut bytes = Vec::new();
        data.take(MAX_ESX_CONF).read_to_end(&mut bytes)?;
        self.text = Some(String::from_utf8_lossy(&bytes).into_owned());
        Ok(())
    }
}

/// Hosts (by index) per content, per path and per `esx.conf` key.
#[derive(Default)]
struct Tally {
    files: HashMap<String, HashMap<[u8; 32], Vec<u32>>>,
    keys: HashMap<String, HashMap<String, Vec<u32>>>,
    /// The hosts whose `esx.conf` was compared key by key.
    conf_hosts: Vec<u32>,
}

impl Tally {
    fn file(&mut self, host: u32, path: &str, sha256: [u8; 32]) {
        let by_content = match self.files.get_mut(path) {
            Some(by_content) => by_content,
            None => self.files.entry(path.to_string()).or_default(),
        };
        by_content.entry(sha256).or_default().push(host);
    }

    fn esx_conf(&mut self, host: u32, text: &str, ignored: &Ignored) {
        self.conf_hosts.push(host);
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.starts_with('/') && !ignored.key(key) {
                values.insert(key, value.trim().trim_matches('"'));
            }
        }
        for (key, value) in values {
            let by_value = match self.keys.get_mut(key) {
                Some(by_value) => by_value,
                None => self.keys.entry(key.to_string()).or_default(),
            };
            match by_value.get_mut(value) {
                Some(hosts) => hosts.push(host),
                None => {
                    by_value.insert(value.to_string(), vec![host]);
                }
            }
        }
    }

    /// Every path and key with two or more groups among two or more hosts.
    fn drift(self, ids: &[&str]) -> Vec<DriftItem> {
        let mut items = Vec::new();
        for (path, by_content) in self.files {
            let groups = by_content
                .into_iter()
                .map(|(digest, hosts)| (Content::Sha256(crate::records::hex(&digest)), hosts));
            push_item(&mut items, path, None, groups.collect(), ids);
        }
        for (key, by_value) in self.keys {
            let mut groups: Vec<(Content, Vec<u32>)> = Vec::new();
            let mut set = vec![false; ids.len()];
            for (value, hosts) in by_value {
                hosts.iter().for_each(|h| set[*h as usize] = true);
                groups.push((Content::Value(Some(value)), hosts));
            }
            let unset: Vec<u32> = self
                .conf_hosts
                .iter()
                .copied()
                .filter(|h| !set[*h as usize])
                .collect();
            if !unset.is_empty() {
                groups.push((Content::Value(None), unset));
            }
            push_item(&mut items, ESX_CONF.to_string(), Some(key), groups, ids);
        }
        items.sort_by(|a, b| (&a.path, &a.key).cmp(&(&b.path, &b.key)));
        items
    }
}

fn push_item(
    items: &mut Vec<DriftItem>,
    path: String,
    key: Option<String>,
    groups: Vec<(Content, Vec<u32>)>,
    ids: &[&str],
) {
    let holders: usize = groups.iter().map(|(_, hosts)| hosts.len()).sum();
    if groups.len() < 2 || holders < 2 {
        return;
    }
    let mut groups: Vec<DriftGroup> = groups
        .into_iter()
        .map(|(content, hosts)| {
            let mut hosts: Vec<String> =
                hosts.iter().map(|h| ids[*h as usize].to_string()).collect();
            hosts.sort();
            DriftGroup { hosts, content }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.hosts
            .len()
            .cmp(&a.hosts.len())
            .then(a.hosts.cmp(&b.hosts))
    });
    items.push(DriftItem { path, key, groups });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_missing_on_one_host_drift() {
        let ignored = Ignored::new(&[]).unwrap();
        let mut tally = Tally::default();
        tally.esx_conf(0, "/a = \"1\"\n/system/uuid = \"x\"\n", &ignored);
        tally.esx_conf(
            1,
            "/a = \"1\"\n/system/uuid = \"y\"\n/b = \"2\"\n",
            &ignored,
        );
        tally.file(0, "etc/ntp.conf", [1; 32]);
        tally.file(1, "etc/ntp.conf", [1; 32]);
        tally.file(1, "etc/only-one", [1; 32]);
        let drift = tally.drift(&["h0", "h1"]);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].key.as_deref(), Some("/b"));
        let unset = drift[0]
            .groups
            .iter()
            .find(|g| g.content == Content::Value(None));
        assert_eq!(unset.map(|g| g.hosts.clone()), Some(vec!["h0".to_string()]));
    }
}
