//! `boot.cfg`: one parser, one rewriter.
//!
//! The model keeps the file's exact text and the byte range of every `key=value` line, so a
//! rewrite changes only the value asked for: order, spacing, comments, unknown keys and line
//! endings stay byte for byte. Keys are case-insensitive; spaces around `=` are allowed.
//! `bootstate=` must stay within the first 512 bytes, because the boot loader patches that digit
//! in place; a rewrite that would move it further is refused.

use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::Error;

/// Offset limit for the `bootstate=` line (the loader patches it in place).
pub const BOOTSTATE_WINDOW: usize = 512;
/// Separator of the `modules=` list.
pub const MODULE_SEPARATOR: &str = " --- ";

#[derive(Debug, Clone)]
struct Line {
    key: String,
    key_start: usize,
    value: Range<usize>,
}

/// A parsed `boot.cfg` that remembers its bytes.
#[derive(Debug, Clone)]
pub struct BootCfg {
    text: String,
    lines: Vec<Line>,
}

impl BootCfg {
    /// Parses `text`; the error says which line is wrong.
    pub fn parse(text: &str) -> Result<BootCfg, String> {
        if text.contains('\0') {
            return Err("it holds a NUL byte".into());
        }
        let mut lines = Vec::new();
        let mut offset = 0;
        for (number, raw) in text.split_inclusive('\n').enumerate() {
            let start = offset;
            offset += raw.len();
            let body = raw.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some(eq) = body.find('=') else {
                return Err(format!("line {} has no `=`: `{}`", number + 1, trimmed));
            };
            let key = body[..eq].trim();
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(format!("line {} has a bad key: `{}`", number + 1, trimmed));
            }
            let key = key.to_ascii_lowercase();
            if lines.iter().any(|l: &Line| l.key == key) {
                return Err(format!("key `{key}` appears twice (line {})", number + 1));
            }
            let after = &body[eq + 1..];
            let lead = after.len() - after.trim_start().len();
            let value_start = start + eq + 1 + lead;
            let value_end = start + body.trim_end().len().max(eq + 1 + lead);
            let key_start = start + (body.len() - body.trim_start().len());
            lines.push(Line {
                key,
                key_start,
                value: value_start..value_end,
            });
        }
        let cfg = BootCfg {
            text: text.to_string(),
            lines,
        };
        for key in ["updated", "bootstate"] {
            if let Some(value) = cfg.get(key) {
                if value.parse::<u64>().is_err() {
                    return Err(format!("`{key}={value}` is not a number"));
                }
            }
        }
        Ok(cfg)
    }

    /// Reads and parses `path`; a file that does not parse is a typed [`Error::BadBootCfg`].
    pub fn load(path: &Path) -> Result<BootCfg> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::BadBootCfg {
            path: path.to_path_buf(),
            reason: "it is not valid UTF-8 text".into(),
        })?;
        BootCfg::parse(&text).map_err(|reason| {
            Error::BadBootCfg {
                path: path.to_path_buf(),
                reason,
            }
            .into()
        })
    }

    /// The exact text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value of `key` (case-insensitive), trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.lines
            .iter()
            .find(|line| line.key == key)
            .map(|line| &self.text[line.value.clone()])
    }

    /// `key` as a number; absent or unparsable gives `None`.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// The module names of `modules=` (first word of each ` --- ` item).
    pub fn modules(&self) -> Vec<String> {
        self.get("modules")
            .map(|value| {
                value
                    .split("---")
                    .filter_map(|item| item.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when `modules=` names `name` (ignoring a leading `/`).
    pub fn lists_module(&self, name: &str) -> bool {
        self.modules()
            .iter()
            .any(|module| module.trim_start_matches('/') == name)
    }

    /// A copy with `key`'s value replaced (or, when absent, a `key=value` line appended).
    pub fn with_value(&self, key: &str, value: &str) -> Result<BootCfg, String> {
        let lower = key.to_ascii_lowercase();
        let text = match self.lines.iter().find(|line| line.key == lower) {
            Some(line) => {
                let mut text = String::with_capacity(self.text.len() + value.len());
                text.push_str(&self.text[..line.value.start]);
                text.push_str(value);
                text.push_str(&self.text[line.value.end..]);
                text
            }
            None => {
                let newline = if self.text.contains("\r\n") {
                    "\r\n"
                } else {
                    "\n"
                };
                let mut text = self.text.clone();
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push_str(newline);
                }
                text.push_str(&format!("{key}={value}{newline}"));
                text
            }
        };
        let updated = BootCfg::parse(&text)?;
        if self
            .bootstate_offset()
            .is_some_and(|at| at < BOOTSTATE_WINDOW)
            && updated
                .bootstate_offset()
                .is_some_and(|at| at >= BOOTSTATE_WINDOW)
        {
            return Err(format!(
                "the change would move `bootstate=` past byte {BOOTSTATE_WINDOW}, where the loader cannot patch it"
            ));
        }
        Ok(updated)
    }

    /// A copy whose `modules=` also lists `name` (appended with ` --- `), or `None` if it already does.
    pub fn with_module(&self, name: &str) -> Result<Option<BootCfg>, String> {
        if self.lists_module(name) {
            return Ok(None);
        }
        let value = match self.get("modules") {
            Some(current) if !current.is_empty() => format!("{current}{MODULE_SEPARATOR}{name}"),
            _ => name.to_string(),
        };
        self.with_value("modules", &value).map(Some)
    }

    fn bootstate_offset(&self) -> Option<usize> {
        self.lines
            .iter()
            .find(|line| line.key == "bootstate")
            .map(|line| line.key_start)
    }
}

/// Writes `cfg` over `path` atomically, keeping the file's mode.
pub fn save(path: &Path, cfg: &BootCfg) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    crate::atomic::write_atomically(path, cfg.text().as_bytes(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "bootstate=0\r\ntitle=Loading VMware ESXi\r\ntimeout=5\r\n# a comment\r\nPrefix = \r\nkernel=/b.b00\r\nkernelopt=autoPartition=FALSE\r\nmodules=/jumpstrt.gz --- /useropts.gz --- /k.b00\r\nbuild=7.0.3-0.20.19193900\r\nupdated = 3 \r\n";

    #[test]
    fn keys_are_case_insensitive_and_spaces_allowed() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        assert_eq!(cfg.get("prefix"), Some(""));
        assert_eq!(cfg.number("UPDATED"), Some(3));
        assert_eq!(cfg.get("kernelopt"), Some("autoPartition=FALSE"));
        assert_eq!(
            cfg.modules(),
            vec!["/jumpstrt.gz", "/useropts.gz", "/k.b00"]
        );
    }

    #[test]
    fn changing_one_value_keeps_every_other_byte() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        let changed = cfg.with_value("updated", "4").unwrap();
        assert_eq!(
            changed.text(),
            SAMPLE.replace("updated = 3 ", "updated = 4 ")
        );
    }

    #[test]
    fn appending_state_tgz_changes_only_the_modules_value() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        let changed = cfg.with_module("state.tgz").unwrap().unwrap();
        assert_eq!(
            changed.text(),
            SAMPLE.replace("/k.b00\r\n", "/k.b00 --- state.tgz\r\n")
        );
        assert!(changed.with_module("state.tgz").unwrap().is_none());
    }

    #[test]
    fn unparsable_files_are_reported() {
        assert!(BootCfg::parse("bootstate=0\ngarbage line\n").is_err());
        assert!(BootCfg::parse("updated=x\n").is_err());
        assert!(BootCfg::parse("updated=1\nUPDATED=2\n").is_err());
    }

    #[test]
    fn bootstate_may_not_leave_the_first_512_bytes() {
        let text = format!("modules=a\nkernelopt={}\nbootstate=0\n", "x".repeat(480));
        let cfg = BootCfg::parse(&text).unwrap();
        assert!(cfg.with_module("state.tgz").is_err());
    }
}
