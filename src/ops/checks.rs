//! The checks `restore` and `install` run before they write: every check runs, and a refusal
//! is one message listing each failed check with the flag that overrides it (or that nothing
//! does), so a second refusal never shows only after the first was overridden.

use std::path::Path;

use anyhow::{bail, Result};

/// What the checks found so far.
pub struct Checks {
    force: bool,
    /// The verb of a forced run's warnings: `restoring`, `installing`.
    verb: &'static str,
    failed: Vec<String>,
    pub warnings: Vec<String>,
}

impl Checks {
    pub fn new(force: bool, verb: &'static str, warnings: Vec<String>) -> Checks {
        Checks {
            force,
            verb,
            failed: Vec::new(),
            warnings,
        }
    }

    /// A failed check `--force` overrides (a warning then).
    pub fn forceable(&mut self, what: String) {
        match self.force {
            true => (self.warnings).push(format!("{what}; {} anyway (--force)", self.verb)),
            false => self.failed.push(format!("{what} (--force overrides this)")),
        }
    }

    /// A failed check nothing overrides.
    pub fn never(&mut self, what: String) {
        self.failed
            .push(format!("{what} (never overridden, not even by --force)"));
    }

    /// Ok with the warnings when every check passed; else one refusal naming `subject`, each
    /// failed check, and `outcome` (what did not happen).
    pub fn finish(self, subject: &Path, outcome: &str) -> Result<Vec<String>> {
        match self.failed.as_slice() {
            [] => Ok(self.warnings),
            [only] => bail!("`{}`: {only}; {outcome}", subject.display()),
            all => {
                let listed: Vec<String> = (all.iter().enumerate())
                    .map(|(i, what)| format!("({}) {what}", i + 1))
                    .collect();
                bail!(
                    "`{}` fails {} checks: {}; {outcome}",
                    subject.display(),
                    all.len(),
                    listed.join("; ")
                )
            }
        }
    }
}

/// The refusal of state from another release: never `done` (installed, restored); names what
/// to install first.
pub fn other_release(found: &str, build: Option<&str>, ours: &str, done: &str) -> String {
    let first = match build.filter(|b| !b.is_empty()) {
        Some(build) => format!("{found} (build {build})"),
        None => found.to_string(),
    };
    format!(
        "it was saved on {found}, but this host runs {ours}: state from another release is \
         never {done} (it can leave a host that does not boot); install {first} on this host \
         first, then this archive"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refusal_lists_every_failed_check_with_its_override() {
        let mut checks = Checks::new(false, "installing", Vec::new());
        checks.forceable("it comes from host UUID `a`".into());
        checks.never("it was saved on release X".into());
        let err = checks.finish(Path::new("b.tgz"), "nothing was installed");
        let text = err.unwrap_err().to_string();
        assert!(
            text.starts_with("`b.tgz` fails 2 checks: (1) it comes"),
            "{text}"
        );
        assert!(
            text.contains("(--force overrides this); (2) it was saved"),
            "{text}"
        );
        assert!(
            text.ends_with("not even by --force); nothing was installed"),
            "{text}"
        );
        let mut forced = Checks::new(true, "installing", Vec::new());
        forced.forceable("it comes from host UUID `a`".into());
        assert_eq!(forced.finish(Path::new("b.tgz"), "x").unwrap().len(), 1);
    }
}
