//! `boot.cfg`: the loader's reading of it (see [`super::loader`]) and the one rewriter.
//!
//! A `BootCfg` keeps the file's exact bytes and what safeboot (which picks the bank) and mboot
//! (which loads it) each read from them. Values are what the loader uses: the last line that
//! names a key wins, `updated = 3` (blank before `=`) is not `updated`, a malformed integer
//! makes the file unusable. A rewrite replaces the one line the loader reads for the key with a
//! canonical `key=value` and that line's own ending, keeps every other byte, and is refused
//! unless reading the result back gives exactly the value asked for, every other value
//! unchanged, and a `bootstate=` the loader can still patch within the first 512 bytes.

use std::path::Path;

use anyhow::{Context, Result};

use super::loader::{self, Parsed, RawLine, BOOTSTATE_WINDOW, MBOOT, SAFEBOOT};
use crate::error::Error;

mod notes;
pub use notes::LineNote;

/// Separator of the `modules=` list.
pub const MODULE_SEPARATOR: &str = " --- ";
/// The largest `boot.cfg` read (a real one is a few hundred bytes; a modules line of hundreds
/// of VIBs stays far below).
pub const MAX_BOOTCFG_BYTES: u64 = 1 << 20;

/// A `boot.cfg` with the loader's view of it.
#[derive(Debug, Clone)]
pub struct BootCfg {
    bytes: Vec<u8>,
    lines: Vec<RawLine>,
    safeboot: Parsed,
    mboot: Parsed,
    /// The string options' values, decoded once.
    strings: Vec<(&'static str, String)>,
}

/// Bytes as text: Latin-1 (the loader's charset), control bytes escaped.
pub fn latin1(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0..=0x1f | 0x7f..=0x9f => format!("\\x{b:02x}"),
            _ => char::from(b).to_string(),
        })
        .collect()
}

/// Latin-1 bytes as text, one char per byte (reversible for the values statectl writes).
fn decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The inverse of [`decode`]; `None` for a char beyond Latin-1.
fn encode(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

impl BootCfg {
    /// Reads `bytes` as the loader does; this never fails (see [`BootCfg::loader_error`]).
    pub fn from_bytes(bytes: &[u8]) -> BootCfg {
        let lines = loader::split_lines(bytes);
        let safeboot = Parsed::parse(&lines, SAFEBOOT);
        let mboot = Parsed::parse(&lines, MBOOT);
        let strings = [&safeboot, &mboot]
            .into_iter()
            .flat_map(|parsed| {
                parsed
                    .table
                    .iter()
                    .filter_map(|def| Some((def.key, decode(parsed.string(def.key)?))))
            })
            .collect();
        BootCfg {
            safeboot,
            mboot,
            strings,
            bytes: bytes.to_vec(),
            lines,
        }
    }

    /// [`BootCfg::from_bytes`], refusing a file the loader cannot use.
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<BootCfg, String> {
        let cfg = BootCfg::from_bytes(text.as_bytes());
        match cfg.loader_error() {
            Some(reason) => Err(reason),
            None => Ok(cfg),
        }
    }

    /// Reads `path` (non-blocking, a regular file of at most [`MAX_BOOTCFG_BYTES`]); a file
    /// the loader cannot use is a typed [`Error::BadBootCfg`] (statectl
    /// never rewrites one).
    pub fn load(path: &Path) -> Result<BootCfg> {
        let bytes = crate::fs::hostfile::read_bounded(path, MAX_BOOTCFG_BYTES)
            .and_then(|bytes| bytes.context("it does not exist"))
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let cfg = BootCfg::from_bytes(&bytes);
        match cfg.loader_error() {
            Some(reason) => Err(Error::BadBootCfg {
                path: path.to_path_buf(),
                reason,
            }
            .into()),
            None => Ok(cfg),
        }
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Why safeboot cannot use this file (it then skips the bank), if it cannot.
    pub fn loader_error(&self) -> Option<String> {
        self.syntax_error(&self.safeboot, "the boot loader ignores this whole file")
    }

    fn syntax_error(&self, parsed: &Parsed, effect: &str) -> Option<String> {
        let error = parsed.error.as_ref()?;
        Some(format!(
            "line {} `{}`: `{}` is not a number to the loader (an optional `-` and digits \
             only, esx-boot bootlib/string.c:427), so {effect}",
            error.line + 1,
            self.line_text(error.line),
            latin1(&error.value)
        ))
    }

    fn line_text(&self, index: usize) -> String {
        let line = &self.lines[index];
        latin1(&self.bytes[line.start..line.end])
    }

    fn view(&self, key: &str) -> Option<&Parsed> {
        [&self.safeboot, &self.mboot]
            .into_iter()
            .find(|parsed| parsed.table.iter().any(|def| def.key == key))
    }

    /// The loader's value of a string `key` (Latin-1 decoded), `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.strings
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
    }

    /// `updated` as the loader's `uint32_t` holds it.
    pub fn updated(&self) -> u32 {
        self.safeboot.int("updated") as u32
    }

    /// `bootstate` as the loader's `int` holds it (0 when absent).
    pub fn bootstate(&self) -> i32 {
        self.safeboot.int("bootstate")
    }

    /// `quickboot` (any non-zero value is "quick boot only").
    pub fn quickboot(&self) -> i32 {
        self.safeboot.int("quickboot")
    }

    /// `build`, `None` when absent or empty.
    pub fn build(&self) -> Option<&str> {
        self.get("build")
    }

    /// True when the loader can patch `bootstate` in place (needed for states other than 0).
    pub fn bootstate_patchable(&self) -> bool {
        loader::bootstate_patch_offset(&self.bytes).is_some()
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

    /// A copy with `key`'s value set to `value`: the line the loader reads for it (or a
    /// look-alike it ignores, `key = ...`) becomes `key=value`, else such a line is appended.
    pub fn with_value(&self, key: &str, value: &str) -> Result<BootCfg, String> {
        let key = key.to_ascii_lowercase();
        let view = self
            .view(&key)
            .ok_or_else(|| format!("`{key}` is not a key the loader reads"))?;
        let target = view.line_of(&key).or_else(|| self.lookalike(&key));
        // The key as the file spells it (`MODULES=` stays upper case).
        let spelled = target.and_then(|index| self.key_spelling(index, &key));
        let canonical = encode(&format!("{}={value}", spelled.as_deref().unwrap_or(&key)))
            .ok_or_else(|| format!("`{value}` is not Latin-1 text"))?;
        let mut bytes = Vec::with_capacity(self.bytes.len() + value.len() + 12);
        match target {
            Some(index) => {
                let line = &self.lines[index];
                let cr = self.bytes[line.start..line.end].ends_with(b"\r");
                bytes.extend_from_slice(&self.bytes[..line.start]);
                bytes.extend_from_slice(&canonical);
                if cr {
                    bytes.push(b'\r');
                }
                bytes.extend_from_slice(&self.bytes[line.end..]);
            }
            None => {
                let ending: &[u8] = if self.uses_crlf() { b"\r\n" } else { b"\n" };
                bytes.extend_from_slice(&self.bytes);
                if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                    bytes.extend_from_slice(ending);
                }
                bytes.extend_from_slice(&canonical);
                bytes.extend_from_slice(ending);
            }
        }
        let changed = BootCfg::from_bytes(&bytes);
        self.check_rewrite(&changed, &key, value)?;
        Ok(changed)
    }

    /// How line `index` spells `key` (the text before its `=`, blanks trimmed), when it does.
    fn key_spelling(&self, index: usize, key: &str) -> Option<String> {
        let line = &self.lines[index];
        let text = &self.bytes[line.start..line.end];
        let eq = text.iter().position(|&b| b == b'=')?;
        let spelled = std::str::from_utf8(&text[..eq]).ok()?.trim();
        spelled
            .eq_ignore_ascii_case(key)
            .then(|| spelled.to_string())
    }

    /// The last line that looks like `key` but has a blank before `=`.
    fn lookalike(&self, key: &str) -> Option<usize> {
        self.lines.iter().rposition(|line| {
            let merged = &line.merged;
            merged.iter().position(|&b| b == b'=').is_some_and(|eq| {
                merged[..eq]
                    .trim_ascii_end()
                    .eq_ignore_ascii_case(key.as_bytes())
            })
        })
    }

    fn uses_crlf(&self) -> bool {
        self.lines
            .first()
            .is_some_and(|line| self.bytes[line.start..line.end].ends_with(b"\r"))
    }

    /// The rewrite gives `key=value` to the loader and changes nothing else it reads.
    fn check_rewrite(&self, changed: &BootCfg, key: &str, value: &str) -> Result<(), String> {
        if let Some(reason) = changed.loader_error() {
            return Err(format!(
                "the result would be unusable to the loader ({reason})"
            ));
        }
        let view = changed.view(key).ok_or("unknown key")?;
        let got = match view.value(key) {
            Some(loader::Value::Int(n)) => n.to_string(),
            Some(loader::Value::Str(Some(bytes))) => decode(&bytes),
            _ => String::new(),
        };
        if got != value {
            return Err(format!(
                "the loader would read `{key}` as `{got}`, not `{value}`"
            ));
        }
        for (old, new) in [
            (&self.safeboot, &changed.safeboot),
            (&self.mboot, &changed.mboot),
        ] {
            for def in old.table.iter().filter(|def| def.key != key) {
                if old.value(def.key) != new.value(def.key) {
                    return Err(format!("the change would also change `{}`", def.key));
                }
            }
        }
        if self.bootstate_patchable() && !changed.bootstate_patchable() {
            return Err(format!(
                "the change would move `bootstate=` past byte {BOOTSTATE_WINDOW}, where the \
                 loader cannot patch it"
            ));
        }
        Ok(())
    }

    /// A copy whose `modules=` also lists `name` (appended with ` --- `), or `None` if it already does.
    pub fn with_module(&self, name: &str) -> Result<Option<BootCfg>, String> {
        if self.lists_module(name) {
            return Ok(None);
        }
        if self.get("modules").is_none() {
            if let Some(index) = self.lookalike("modules") {
                return Err(format!(
                    "line {} `{}` is not read as `modules` by the loader (a blank before `=`); \
                     fix boot.cfg by hand",
                    index + 1,
                    self.line_text(index)
                ));
            }
        }
        let value = match self.get("modules") {
            Some(current) => format!("{current}{MODULE_SEPARATOR}{name}"),
            None => name.to_string(),
        };
        self.with_value("modules", &value).map(Some)
    }
}

/// Writes `cfg` over `path` atomically, keeping the file's mode.
pub fn save(path: &Path, cfg: &BootCfg) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    crate::fs::atomic::write_atomically(path, cfg.bytes(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "bootstate=0\r\ntitle=Loading VMware ESXi\r\ntimeout=5\r\n# a comment\r\nprefix=\r\nkernel=/b.b00\r\nkernelopt=autoPartition=FALSE\r\nmodules=/jumpstrt.gz --- /useropts.gz --- /k.b00\r\nbuild=7.0.3-0.20.19193900\r\nupdated=3\r\n";

    #[test]
    fn a_rewritten_line_keeps_the_files_spelling_of_its_key() {
        let text = SAMPLE.replace("modules=", "MODULES=");
        let cfg = BootCfg::parse(&text).unwrap();
        let updated = cfg.with_module("state.tgz").unwrap().unwrap();
        let bytes = String::from_utf8(updated.bytes().to_vec()).unwrap();
        assert!(
            bytes
                .contains("\r\nMODULES=/jumpstrt.gz --- /useropts.gz --- /k.b00 --- state.tgz\r\n"),
            "{bytes}"
        );
        assert_eq!(bytes.replace(" --- state.tgz", ""), text);
    }

    #[test]
    fn values_are_the_loaders() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        assert_eq!(cfg.get("prefix"), None);
        assert_eq!(cfg.updated(), 3);
        assert_eq!(cfg.get("kernelopt"), Some("autoPartition=FALSE"));
        assert_eq!(
            cfg.modules(),
            vec!["/jumpstrt.gz", "/useropts.gz", "/k.b00"]
        );
        let spaced = BootCfg::parse("updated = 3\nbuild=b\n").unwrap();
        assert_eq!(spaced.updated(), 0);
        assert_eq!(spaced.line_notes().len(), 1);
    }

    #[test]
    fn changing_one_value_rewrites_one_line_canonically() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        let changed = cfg.with_value("updated", "4").unwrap();
        assert_eq!(
            changed.bytes(),
            SAMPLE.replace("updated=3", "updated=4").as_bytes()
        );
        let spaced = BootCfg::parse("build=b\r\nupdated = 3 \r\n").unwrap();
        let fixed = spaced.with_value("updated", "6").unwrap();
        assert_eq!(fixed.bytes(), b"build=b\r\nupdated=6\r\n");
        assert_eq!(fixed.updated(), 6);
        let bare = BootCfg::parse("build=b").unwrap();
        assert_eq!(
            bare.with_value("updated", "1").unwrap().bytes(),
            b"build=b\nupdated=1\n"
        );
    }

    #[test]
    fn appending_state_tgz_changes_only_the_modules_line() {
        let cfg = BootCfg::parse(SAMPLE).unwrap();
        let changed = cfg.with_module("state.tgz").unwrap().unwrap();
        assert_eq!(
            changed.bytes(),
            SAMPLE
                .replace("/k.b00\r\n", "/k.b00 --- state.tgz\r\n")
                .as_bytes()
        );
        assert!(changed.with_module("state.tgz").unwrap().is_none());
    }

    #[test]
    fn malformed_integers_make_the_file_unusable() {
        assert!(BootCfg::parse("updated=+5\n").is_err());
        assert!(BootCfg::parse("bootstate=0x1\n").is_err());
        assert!(BootCfg::parse("updated=1\nUPDATED=2\n").unwrap().updated() == 2);
        assert!(BootCfg::parse("bootstate=0\ngarbage line\n").is_ok());
    }

    #[test]
    fn bootstate_may_not_leave_the_first_512_bytes() {
        let text = format!("modules=a\nkernelopt={}\nbootstate=0\n", "x".repeat(480));
        let cfg = BootCfg::parse(&text).unwrap();
        assert!(cfg.with_module("state.tgz").is_err());
    }
}
