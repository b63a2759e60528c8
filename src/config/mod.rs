//! The selection rules of `statectl.toml`: which rule picks files in the scanned directories
//! (ESXi's `.#` branch rule, or with `select = "sticky"` also the T flag) and what is added,
//! excluded or required on top of it.
//!
//! Every path in the file is root-relative (`etc/...`); absolute paths and `..` are refused so a
//! config can never make statectl read outside `--root`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

mod limits;
pub use limits::Limits;

/// The config file as written by the admin; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    select: Option<Rule>,
    scan: Option<Vec<String>>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    esxi: Option<EsxiSection>,
    copy: Option<CopyConfig>,
}

/// `[copy]`: where `backup` keeps off-host copies (bundles) and how many.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyConfig {
    /// The shared directory (a datastore); copies go into `<to>/<host id>/`.
    pub to: Option<std::path::PathBuf>,
    /// The newest copies kept per host.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The newest copy of each of the last this many UTC days is kept too.
    #[serde(default = "default_keep_daily")]
    pub keep_daily: usize,
}

impl Default for CopyConfig {
    fn default() -> Self {
        CopyConfig {
            to: None,
            keep: default_keep(),
            keep_daily: default_keep_daily(),
        }
    }
}

fn default_keep() -> usize {
    24
}

fn default_keep_daily() -> usize {
    30
}

/// `[esxi]`: how the VIB's init script wires statectl into ESXi (read by that script too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EsxiSection {
    wire: Option<Wire>,
}

/// `[esxi] wire`: what `etc/init.d/statectl start` points at statectl.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// ESXi's backup scripts renamed to `<name>.orig`, links to statectl in their place.
    #[default]
    Dropin,
    /// ESXi's crontab line commented out, statectl's own line added.
    Cron,
    /// Nothing changed.
    None,
}

/// Which files of a scanned directory are persisted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// ESXi's own rule: a regular file with a `.#<name>` sibling (a modified image file).
    #[default]
    Branched,
    /// Also a regular file with the sticky bit and no branch (hosts without branching).
    Sticky,
}

/// The largest config file read: anything bigger is refused, not parsed.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The most `exclude` patterns compiled, and their most bytes together: each becomes a
/// regular expression of one set, whose memory grows with the patterns' length (about 30 MiB
/// at the byte limit, for patterns made of wildcards).
pub const MAX_EXCLUDES: usize = 1_000;
pub const MAX_EXCLUDE_BYTES: usize = 32 << 10;
/// The most bytes of one config value an error message shows.
pub const MAX_SHOWN: usize = 200;

/// Included without a config file when the directory exists (ESXi 7+ ConfigStore).
pub const CONFIGSTORE_BACKUP: &str = "var/lib/vmware/configstore/backup";

/// Validated selection rules.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The rule applied in the scanned directories.
    pub rule: Rule,
    /// Root-relative directories searched for flagged files.
    pub scan: Vec<String>,
    /// Root-relative files or directories persisted whatever their flags.
    pub include: Vec<String>,
    /// Like `include`, but silently skipped when missing (the defaults without a config file).
    pub include_if_present: Vec<String>,
    /// Root-relative files that must exist and be non-empty; they are persisted too.
    pub required: Vec<String>,
    exclude: GlobSet,
    exclude_patterns: Vec<String>,
    /// `[esxi] wire` (the init script acts on it; statectl only validates it, so only the
    /// tests read it back).
    #[cfg_attr(not(test), allow(dead_code))]
    pub wire: Wire,
    /// The `[copy]` table (its defaults when absent).
    pub copy: CopyConfig,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            rule: Rule::Branched,
            scan: vec!["etc".to_string()],
            include: Vec::new(),
            include_if_present: vec![CONFIGSTORE_BACKUP.to_string()],
            required: Vec::new(),
            exclude: GlobSet::empty(),
            exclude_patterns: Vec::new(),
            wire: Wire::default(),
            copy: CopyConfig::default(),
        }
    }
}

impl Selection {
    /// Loads `path`; a missing file gives the defaults unless `explicit` (named by the user).
    pub fn load(path: &Path, explicit: bool) -> Result<Selection> {
        let cannot_read = || {
            format!(
                "cannot read config `{}`; fix the path or drop --config",
                path.display()
            )
        };
        // Non-blocking, a regular file, at most 1 MiB: a FIFO or device there cannot hang or
        // flood a run.
        let bytes = match crate::fs::hostfile::read_bounded(path, MAX_CONFIG_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) if !explicit => return Ok(Selection::default()),
            Ok(None) => bail!("{}: it does not exist", cannot_read()),
            Err(err) => return Err(err).with_context(cannot_read),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("it is not UTF-8 text"))
            .with_context(cannot_read)?;
        Selection::parse(&text).with_context(|| {
            format!(
                "invalid config `{}`; fix it (see FILES in statectl(1)) or point --config elsewhere",
                path.display()
            )
        })
    }

    /// Parses the TOML text of a config file.
    pub fn parse(text: &str) -> Result<Selection> {
        let file: ConfigFile = toml::from_str(text).map_err(|err| {
            let message = err.message().trim_end_matches('\n');
            match err.span() {
                Some(span) => {
                    let line = 1 + text[..span.start.min(text.len())].matches('\n').count();
                    anyhow::anyhow!("line {line}: {}", shown(message))
                }
                None => anyhow::anyhow!("{}", shown(message)),
            }
        })?;
        let mut selection = Selection {
            rule: file.select.unwrap_or_default(),
            include_if_present: Vec::new(),
            wire: file.esxi.and_then(|esxi| esxi.wire).unwrap_or_default(),
            ..Selection::default()
        };
        if let Some(scan) = file.scan {
            selection.scan = scan;
        }
        selection.include = file.include;
        selection.required = file.required;
        selection.copy = file.copy.unwrap_or_default();
        if selection.copy.keep == 0 {
            bail!("[copy] keep must be at least 1 (the copy just written is always kept)");
        }
        let exclude_bytes: usize = file.exclude.iter().map(String::len).sum();
        if file.exclude.len() > MAX_EXCLUDES || exclude_bytes > MAX_EXCLUDE_BYTES {
            bail!(
                "{} exclude patterns of {exclude_bytes} bytes, over the {MAX_EXCLUDES} patterns \
                 or {MAX_EXCLUDE_BYTES} bytes statectl compiles; merge them (`etc/**/*.bak` \
                 stands for many)",
                file.exclude.len()
            );
        }
        for path in selection
            .scan
            .iter()
            .chain(&selection.include)
            .chain(&selection.required)
        {
            check_relative(path)?;
        }
        let mut globs = GlobSetBuilder::new();
        for pattern in &file.exclude {
            let glob = GlobBuilder::new(pattern.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .with_context(|| format!("bad exclude pattern `{}`", shown(pattern)))?;
            globs.add(glob);
        }
        selection.exclude = globs
            .build()
            .context("cannot compile the exclude patterns")?;
        selection.exclude_patterns = file.exclude;
        selection.scan = normalize_all(&selection.scan);
        selection.include = normalize_all(&selection.include);
        selection.required = normalize_all(&selection.required);
        Ok(selection)
    }

    /// The paths in `paths` that no selection by these rules could produce: not under a
    /// scanned directory, an include, a required file or ESXi's ConfigStore backup (in every
    /// real 7.x archive).
    pub fn outside<'a>(&self, paths: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let bases: Vec<&str> = self
            .scan
            .iter()
            .chain(&self.include)
            .chain(&self.include_if_present)
            .chain(&self.required)
            .map(String::as_str)
            .chain([CONFIGSTORE_BACKUP])
            .collect();
        paths
            .filter(|path| {
                !bases.iter().any(|base| {
                    path.strip_prefix(base)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
            })
            .collect()
    }

    /// True when a root-relative path matches an `exclude` pattern.
    pub fn is_excluded(&self, rel: &str) -> bool {
        !self.exclude_patterns.is_empty() && self.exclude.is_match(rel)
    }
}

fn check_relative(path: &str) -> Result<()> {
    let shown = shown(path);
    if path.starts_with('/') {
        bail!("path `{shown}` must be relative to the root (write `etc/...`, not `/etc/...`)");
    }
    if path.split('/').any(|part| part == "..") {
        bail!("path `{shown}` must not contain `..`");
    }
    if normalize(path).is_empty() {
        bail!("path `{shown}` names the root itself; name a directory or file under it");
    }
    Ok(())
}

/// At most [`MAX_SHOWN`] bytes of a config value, for an error line (cut at a character).
pub fn shown(value: &str) -> String {
    if value.len() <= MAX_SHOWN {
        return value.escape_debug().to_string();
    }
    let mut end = MAX_SHOWN;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", value[..end].escape_debug(), value.len())
}

/// Each path normalized once, in order, a repeated one dropped (so a config repeating an
/// entry thousands of times costs one walk of it, not thousands).
fn normalize_all(paths: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    paths
        .iter()
        .map(|p| normalize(p))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_scan_etc_only() {
        let selection = Selection::parse("").unwrap();
        assert_eq!(selection.scan, vec!["etc"]);
        assert!(!selection.is_excluded("etc/hosts"));
    }

    #[test]
    fn exclude_star_does_not_cross_directories() {
        let selection = Selection::parse("exclude = [\"etc/*.bak\"]").unwrap();
        assert!(selection.is_excluded("etc/hosts.bak"));
        assert!(!selection.is_excluded("etc/vmware/hosts.bak"));
        let deep = Selection::parse("exclude = [\"etc/**/*.bak\"]").unwrap();
        assert!(deep.is_excluded("etc/vmware/hosts.bak"));
    }

    #[test]
    fn absolute_and_dotdot_paths_are_refused() {
        assert!(Selection::parse("include = [\"/etc/x\"]").is_err());
        assert!(Selection::parse("required = [\"etc/../../x\"]").is_err());
        assert!(Selection::parse("scan = [\"./\"]").is_err());
    }

    #[test]
    fn esxi_wire_is_one_of_three_and_dropin_by_default() {
        assert_eq!(Selection::parse("").unwrap().wire, Wire::Dropin);
        let cron = Selection::parse("[esxi]\nwire = \"cron\"").unwrap();
        assert_eq!(cron.wire, Wire::Cron);
        assert_eq!(
            Selection::parse("[esxi]\nwire = \"none\"").unwrap().wire,
            Wire::None
        );
        let err = Selection::parse("[esxi]\nwire = \"rc\"").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        assert!(Selection::parse("[esxi]\nwyre = \"cron\"").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Selection::parse("scna = [\"etc\"]").unwrap_err();
        assert!(format!("{err:#}").contains("scna"), "{err:#}");
    }

    #[test]
    fn branched_rule_by_default_sticky_on_request_configstore_only_without_a_file() {
        let parsed = Selection::parse("").unwrap();
        assert_eq!(parsed.rule, Rule::Branched);
        assert!(parsed.include_if_present.is_empty());
        assert_eq!(
            Selection::default().include_if_present,
            vec![CONFIGSTORE_BACKUP]
        );
        let sticky = Selection::parse("select = \"sticky\"").unwrap();
        assert_eq!(sticky.rule, Rule::Sticky);
        assert!(Selection::parse("select = \"all\"").is_err());
    }

    #[test]
    fn members_outside_scanned_and_included_paths_are_found() {
        let rules = Selection::default();
        let paths = [
            "etc/hosts",
            "hosts",
            "etcx/a",
            "var/lib/vmware/configstore/backup/x",
        ];
        assert_eq!(rules.outside(paths.into_iter()), vec!["hosts", "etcx/a"]);
    }

    #[test]
    fn copy_table_has_defaults_and_refuses_keep_zero() {
        assert_eq!(Selection::parse("").unwrap().copy, CopyConfig::default());
        let copy = Selection::parse("[copy]\nto = \"/vmfs/volumes/ds/statectl\"\nkeep = 3\n")
            .unwrap()
            .copy;
        assert_eq!(
            copy.to.as_deref(),
            Some(Path::new("/vmfs/volumes/ds/statectl"))
        );
        assert_eq!((copy.keep, copy.keep_daily), (3, 30));
        assert!(Selection::parse("[copy]\nkeep = 0\n").is_err());
        assert!(Selection::parse("[copy]\nkept = 1\n").is_err());
    }

    #[test]
    fn repeats_are_dropped_long_values_cut_and_pattern_counts_bounded() {
        let many = format!("scan = [{}\"etc/\"]", "\"etc\",".repeat(20_000));
        assert_eq!(Selection::parse(&many).unwrap().scan, vec!["etc"]);
        let long = format!("include = [\"/{}\"]", "x".repeat(100_000));
        let err = format!("{:#}", Selection::parse(&long).unwrap_err());
        assert!(err.len() < 400 && err.contains("(100001 bytes)"), "{err}");
        let globs = format!("exclude = [{}]", "\"etc/*.b\",".repeat(MAX_EXCLUDES + 1));
        let err = format!("{:#}", Selection::parse(&globs).unwrap_err());
        assert!(err.contains("exclude patterns"), "{err}");
        let bad = format!("select = \"{}\"", "y".repeat(10_000));
        let err = format!("{:#}", Selection::parse(&bad).unwrap_err());
        assert!(err.len() < 400, "{err}");
    }

    #[test]
    fn paths_are_normalized() {
        let selection = Selection::parse("include = [\"./var//lib/x/\"]").unwrap();
        assert_eq!(selection.include, vec!["var/lib/x"]);
    }
}
