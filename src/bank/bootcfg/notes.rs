//! What `bank status` and `bank verify` say about a `boot.cfg`: each line the loader ignores
//! or reads otherwise than it looks, and what makes mboot refuse the file.

use super::super::loader::{Parsed, RawLine};
use super::{latin1, BootCfg};

/// A line the loader ignores or reads otherwise than it looks (`bank status`, `bank verify`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineNote {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
    pub note: String,
}

impl BootCfg {
    /// What mboot refuses: a malformed integer of its own options, no `kernel=`, `skip` set.
    pub fn mboot_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(reason) = self.syntax_error(&self.mboot, "mboot refuses the file") {
            problems.push(reason);
        }
        if self.get("kernel").is_none() {
            problems.push("no `kernel=`: mboot refuses the file (mboot/config.c:717)".into());
        }
        if self.mboot.int("skip") != 0 {
            problems
                .push("`skip` is set: mboot skips this configuration (mboot/config.c:711)".into());
        }
        problems
    }

    /// The lines the loader ignores, or reads otherwise than they look.
    pub fn line_notes(&self) -> Vec<LineNote> {
        let last_read = self.safeboot.error.as_ref().map(|e| e.line);
        let mut notes = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            if last_read.is_some_and(|stop| index > stop) {
                notes.push(self.note(index, "after the malformed line: safeboot stops reading"));
                continue;
            }
            if let Some(note) = self.classify(index, line) {
                notes.push(self.note(index, &note));
            }
        }
        notes
    }

    fn note(&self, index: usize, note: &str) -> LineNote {
        LineNote {
            line: index + 1,
            text: self.line_text(index),
            note: note.to_string(),
        }
    }

    fn classify(&self, index: usize, line: &RawLine) -> Option<String> {
        let merged = &line.merged;
        if merged.is_empty() || merged[0] == b'#' {
            return None;
        }
        let Some(eq) = merged.iter().position(|&b| b == b'=') else {
            return Some("no `=`: ignored".into());
        };
        let hits: Vec<(&Parsed, usize)> = [&self.safeboot, &self.mboot]
            .into_iter()
            .filter_map(|parsed| parsed.matched[index].map(|option| (parsed, option)))
            .collect();
        let mboot_stop = self.mboot.error.as_ref().map(|e| e.line);
        if hits.is_empty() && mboot_stop.is_some_and(|stop| index > stop) {
            return Some("after the malformed line: mboot stops reading".into());
        }
        if hits.is_empty() {
            let key = latin1(&merged[..eq]);
            let bare = key.trim_end().to_ascii_lowercase();
            if bare != key.to_ascii_lowercase() && self.view(&bare).is_some() {
                return Some(format!(
                    "a blank before `=`: not read as `{bare}` (esx-boot bootlib/parse.c:60-64 \
                     compares everything before `=`)"
                ));
            }
            return Some(format!("unknown key `{key}`: ignored"));
        }
        for (parsed, option) in hits {
            let key = parsed.table[option].key;
            if let Some(last) = parsed.line_of(key).filter(|&last| last != index) {
                return Some(format!(
                    "`{key}` again on line {}: this line is overridden (the last one wins)",
                    last + 1
                ));
            }
            if !merged[..eq].eq_ignore_ascii_case(key.as_bytes()) {
                return Some(format!(
                    "read as `{key}`: the loader matches key prefixes (bootlib/parse.c:64)"
                ));
            }
        }
        None
    }
}
