//! How results reach the user: JSON on stdout, human lines on stdout, warnings, `-v` detail and
//! the one-line error on stderr (and syslog). `-q` leaves only errors on stderr (cron mails
//! nothing else). Every warning is also collected, and every JSON report printed (a [`Report`])
//! carries them as `"warnings"` (`list --json` stays an array).
//!
//! The error line reads `statectl: error: <what> `<path>`: <cause>; <what to do>`: every
//! context of the chain contributes its "what" in order, and the hints (the part after a
//! context's first `; `) are moved to the end, so the advice is the last thing read.

use std::cell::RefCell;
use std::io::Write;

use serde::Serialize;

use crate::syslog::{self, Severity};

/// Output settings from the global flags, and the warnings given so far.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    warnings: RefCell<Vec<String>>,
}

impl Output {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Output {
        Output {
            json,
            quiet,
            verbose,
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// Prints a report on stdout as one JSON object carrying the warnings given so far as
    /// `"warnings"`, after its own fields.
    pub fn json<T: Report>(&self, report: &T) -> anyhow::Result<()> {
        let warnings = self.warnings.borrow();
        self.json_with(report, &warnings)
    }

    /// Prints a report on stdout as one JSON object carrying `warnings` (gathered by the
    /// command from its own sources, in its own order) as `"warnings"`.
    pub fn json_with<T: Report>(&self, report: &T, warnings: &[String]) -> anyhow::Result<()> {
        print_json(&Reported { report, warnings })
    }

    /// Prints a list (a value that serializes as a JSON array) on stdout as it is: `list --json`
    /// stays an array, and an array carries no warnings.
    pub fn json_list<T: Serialize>(&self, list: &T) -> anyhow::Result<()> {
        print_json(&list)
    }

    /// Prints a result line on stdout.
    pub fn line(&self, text: &str) {
        self.text(&format!("{text}\n"));
    }

    /// Prints text as it is on stdout (a diff, say).
    pub fn text(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
    }

    /// A warning on stderr (unless `-q`), to syslog, and into the JSON document.
    pub fn warn(&self, text: &str) {
        self.warnings.borrow_mut().push(text.to_string());
        syslog::log(Severity::Warning, &format!("warning: {text}"));
        if !self.quiet {
            eprintln!("statectl: warning: {text}");
        }
    }

    /// A warning of the detail level (a skipped or missing configured path, the selection rules'
    /// rule): on stderr only with `-v`, always in the JSON document.
    pub fn note(&self, text: &str) {
        self.warnings.borrow_mut().push(text.to_string());
        if self.verbose > 0 && !self.quiet {
            eprintln!("statectl: warning: {text}");
        }
    }

    /// A known, chosen condition (a rollback target booting next, a pending install, a tie):
    /// to syslog on every run, on stderr only with `-v`, always in the JSON document, so a
    /// cron run that did its job prints nothing.
    pub fn chosen(&self, text: &str) {
        syslog::log(Severity::Notice, text);
        self.note(text);
    }

    /// Each of an operation's warnings, as [`Output::warn`] shows one.
    pub fn warn_all(&self, warnings: &[String]) {
        for warning in warnings {
            self.warn(warning);
        }
    }

    /// A result line: on stdout when `on_stdout`, else (shown only because of `-v`) on stderr.
    pub fn line_or_detail(&self, on_stdout: bool, text: &str) {
        if on_stdout {
            self.line(text);
        } else if self.verbose > 0 {
            eprintln!("{text}");
        }
    }

    /// The one error line, also sent to syslog; `-v` adds the cause chain, one cause a line.
    pub fn error(&self, err: &anyhow::Error) {
        let line = error_line(err);
        syslog::log(Severity::Error, &format!("error: {line}"));
        eprintln!("statectl: error: {line}");
        if self.verbose > 0 {
            for (depth, cause) in err.chain().enumerate() {
                eprintln!("  cause {depth}: {cause}");
            }
        }
    }
}

/// A `--json` report: a type that serializes as a JSON object (a struct or a map, streamed as
/// it goes) with no `warnings` field of its own, since [`Output::json`] adds that one.
pub trait Report: Serialize {}

impl Report for crate::archive::VerifyReport {}
impl Report for crate::ops::bank::check::CheckReport {}
impl Report for crate::ops::bank::set_next::SetNextReport {}
impl Report for crate::ops::bank::status::BankStatus {}
impl Report for crate::ops::bank::sync::SyncReport {}
impl Report for crate::ops::bank::verify::VerifyBanks {}
impl Report for crate::ops::export::ExportReport {}
impl Report for crate::ops::extract::ExtractReport {}
impl Report for crate::ops::fleet::drift::DriftReport {}
impl Report for crate::ops::install::InstallReport {}
impl Report for crate::ops::pack::PackReport {}
impl Report for crate::ops::passwd::PasswdReport {}
impl Report for crate::ops::restore::RestoreReport {}

/// The document printed: the report's fields in their order, then `"warnings"`. Flattening
/// streams the report's fields into the one object (nothing is built in memory).
#[derive(Serialize)]
struct Reported<'a, T: Report> {
    #[serde(flatten)]
    report: &'a T,
    warnings: &'a [String],
}

/// Writes `value` pretty-printed and a newline on stdout.
fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// The error chain as one line: the "what"s joined by `: `, then the hints.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut whats: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace(['\n', '\r'], " ");
        let (what, hint) = split_hint(&text);
        let what = without_os_error(what);
        if !what.is_empty() && whats.last() != Some(&what) {
            whats.push(what);
        }
        if let Some(hint) = hint.filter(|h| !h.is_empty()) {
            if !hints.iter().any(|h| h == hint) {
                hints.push(hint.to_string());
            }
        }
    }
    let mut line = whats.join(": ");
    for hint in hints {
        line.push_str("; ");
        line.push_str(&hint);
    }
    line
}

/// Splits `what; hint` at the first `; ` outside parentheses and backquotes.
fn split_hint(text: &str) -> (&str, Option<&str>) {
    let mut depth = 0i32;
    let mut quoted = false;
    for (at, ch) in text.char_indices() {
        match ch {
            '`' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ';' if !quoted && depth == 0 && text[at..].starts_with("; ") => {
                return (text[..at].trim_end(), Some(text[at + 2..].trim()));
            }
            _ => {}
        }
    }
    (text.trim_end(), None)
}

/// `No such file or directory (os error 2)` reads better without the number.
pub fn without_os_error(text: &str) -> String {
    let Some(at) = text.find(" (os error ") else {
        return text.to_string();
    };
    match text[at + 1..].find(')') {
        Some(end) => format!("{}{}", &text[..at], &text[at + 1 + end + 1..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn chain(inner: std::io::Error, context: &str) -> anyhow::Error {
        Err::<(), _>(inner)
            .context(context.to_string())
            .unwrap_err()
    }

    #[derive(Serialize)]
    struct Sample {
        first: u8,
        nested: serde_json::Value,
        last: Vec<&'static str>,
    }

    impl Report for Sample {}

    #[test]
    fn a_report_carries_its_warnings_once_after_its_own_fields() {
        let report = Sample {
            first: 1,
            nested: serde_json::json!({"warnings": ["inner"]}),
            last: vec!["x"],
        };
        let warnings = ["w1".to_string(), "w2".to_string()];
        let document = Reported {
            report: &report,
            warnings: &warnings,
        };
        assert_eq!(
            serde_json::to_string(&document).unwrap(),
            r#"{"first":1,"nested":{"warnings":["inner"]},"last":["x"],"warnings":["w1","w2"]}"#
        );
    }

    #[test]
    fn hint_moves_after_the_cause() {
        let err = chain(
            std::io::Error::from_raw_os_error(2),
            "cannot read config `/x`; fix the path or drop --config",
        );
        assert_eq!(
            error_line(&err),
            "cannot read config `/x`: No such file or directory; fix the path or drop --config"
        );
    }

    #[test]
    fn semicolons_inside_parentheses_or_paths_stay() {
        let err = anyhow::anyhow!("no bank (a: x; b: y); fix boot.cfg");
        assert_eq!(error_line(&err), "no bank (a: x; b: y); fix boot.cfg");
        let err = anyhow::anyhow!("bad `/a; b` here");
        assert_eq!(error_line(&err), "bad `/a; b` here");
    }

    #[test]
    fn hints_of_several_contexts_are_kept_in_order() {
        let err = Err::<(), _>(anyhow::anyhow!("inner `p`; do this"))
            .context("outer; do that")
            .unwrap_err();
        assert_eq!(error_line(&err), "outer: inner `p`; do that; do this");
    }

    #[test]
    fn os_error_numbers_are_dropped_anywhere() {
        let err = anyhow::anyhow!("Read-only file system (os error 30) at path \"/b/x\"");
        assert_eq!(error_line(&err), "Read-only file system at path \"/b/x\"");
    }

    #[test]
    fn the_line_is_one_line() {
        let err = anyhow::anyhow!("a\nb");
        assert_eq!(error_line(&err), "a b");
    }
}
