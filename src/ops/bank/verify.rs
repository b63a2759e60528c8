//! `bank verify`: can the loader open every module a bank names, and is its `state.tgz` sound?
//!
//! Findings are collected, not stopped at: every module named by `kernel=` and `modules=` must
//! exist inside the bank; a full check also decompresses each gzip module (by magic bytes) to
//! its end; `state.tgz` gets the one archive verify. A `state.tgz` that exists but is not in
//! `modules=` is a warning (the loader would not load it). A bank with no `boot.cfg` at all is
//! an empty bank (fresh installs have one): a warning, nothing to verify.
//!
//! `boot.cfg` itself is read with the loader's rules: each line the loader ignores or reads
//! otherwise than it looks is a warning (with its line number); a file safeboot cannot use, and
//! what makes mboot refuse it (a malformed number in one of its options, no `kernel=`, `skip`
//! set), are errors.

use std::path::PathBuf;

use serde::Serialize;

use crate::archive::{verify_archive, Level, Limits, Problem, STATE_NAME};
use crate::bank::modules::{boot_modules, check_file, resolve};
use crate::bank::{Bank, BankName, BootCfg};

/// How far to read the modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Modules exist; `state.tgz` verifies (what `bank check` runs every few minutes).
    Quick,
    /// Also decompress every gzip module to its end (`bank verify`).
    Full,
}

/// The findings for one bank.
#[derive(Debug, Clone, Serialize)]
pub struct BankFindings {
    pub name: BankName,
    pub path: PathBuf,
    pub ok: bool,
    /// Modules checked (`kernel=` plus `modules=`).
    pub modules: usize,
    pub problems: Vec<Problem>,
}

/// The findings for the banks checked.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyBanks {
    pub ok: bool,
    pub banks: Vec<BankFindings>,
}

impl VerifyBanks {
    pub fn new(banks: Vec<BankFindings>) -> VerifyBanks {
        VerifyBanks {
            ok: banks.iter().all(|bank| bank.ok),
            banks,
        }
    }
}

/// Checks one bank to `depth`.
pub fn verify_bank(bank: &Bank, depth: Depth, limits: &Limits) -> BankFindings {
    let mut problems = Vec::new();
    let mut modules = 0;
    match &bank.cfg {
        Err(reason) if reason == "no boot.cfg" => problems.push(Problem::warning(
            "no boot.cfg: an empty bank, nothing to verify",
        )),
        Err(reason) => problems.push(Problem::error(reason.clone())),
        Ok(cfg) => {
            loader_problems(cfg, &mut problems);
            let names = boot_modules(cfg);
            modules = names.len();
            check_modules(bank, cfg, &names, depth, limits, &mut problems);
        }
    }
    BankFindings {
        name: bank.name,
        path: bank.path.clone(),
        ok: !problems.iter().any(|p| p.level == Level::Error),
        modules,
        problems,
    }
}

fn loader_problems(cfg: &BootCfg, problems: &mut Vec<Problem>) {
    if let Some(reason) = cfg.loader_error() {
        problems.push(Problem::error(format!("boot.cfg {reason}")));
    }
    for note in cfg.line_notes() {
        problems.push(Problem::warning(format!(
            "boot.cfg line {} `{}`: {}",
            note.line, note.text, note.note
        )));
    }
    if cfg.loader_error().is_none() && cfg.bootstate() == 1 && !cfg.bootstate_patchable() {
        problems.push(Problem::error(
            "boot.cfg: bootstate=1 but its digit is not within the first 512 bytes, where the \
             loader patches it (safeboot/config.c:191): the loader skips the bank",
        ));
    }
    for reason in cfg.mboot_problems() {
        problems.push(Problem::error(format!("boot.cfg: {reason}")));
    }
}

fn check_modules(
    bank: &Bank,
    cfg: &BootCfg,
    names: &[String],
    depth: Depth,
    limits: &Limits,
    problems: &mut Vec<Problem>,
) {
    let prefix = cfg.get("prefix").filter(|p| !p.is_empty());
    if names.is_empty() {
        problems.push(Problem::error("boot.cfg names no kernel and no modules"));
    }
    // A module named twice (`kernel=` and again in `modules=`) is checked, and reported, once.
    let mut seen = std::collections::HashSet::new();
    for name in names.iter().filter(|name| seen.insert(name.as_str())) {
        let path = match resolve(&bank.path, prefix, name) {
            Ok(path) => path,
            Err(reason) => {
                problems.push(Problem::error(format!("module {reason}")));
                continue;
            }
        };
        let is_state = path.file_name().is_some_and(|n| n == STATE_NAME);
        if is_state && path.is_file() {
            archive_problems(&path, limits, problems);
            continue;
        }
        let outcome = match depth {
            Depth::Full => check_file(&path).map(drop),
            Depth::Quick if path.is_file() => Ok(()),
            Depth::Quick if path.exists() => Err("is not a regular file".to_string()),
            Depth::Quick => Err("is missing".to_string()),
        };
        if let Err(reason) = outcome {
            problems.push(Problem::error(format!(
                "module `{name}` (`{}`) {reason}",
                path.display()
            )));
        }
    }
    if !cfg.lists_module(STATE_NAME) {
        if let Ok(state) = resolve(&bank.path, prefix, STATE_NAME) {
            if state.exists() {
                problems.push(Problem::warning(format!(
                    "`{}` exists but modules= does not list it, so the loader will not load it; \
                     `statectl backup` or `statectl bank sync` lists it",
                    state.display()
                )));
            }
        }
    }
}

fn archive_problems(path: &std::path::Path, limits: &Limits, problems: &mut Vec<Problem>) {
    let report = verify_archive(path, limits);
    for problem in report.problems {
        problems.push(Problem {
            level: problem.level,
            message: format!("`{}`: {}", path.display(), problem.message),
        });
    }
}

/// Checks the banks named (both when `only` is `None`) to `depth`.
pub fn verify_banks(
    banks: &crate::bank::Banks,
    only: Option<BankName>,
    depth: Depth,
    limits: &Limits,
) -> VerifyBanks {
    let names = match only {
        Some(name) => vec![name],
        None => vec![BankName::Bootbank, BankName::Altbootbank],
    };
    VerifyBanks::new(
        names
            .into_iter()
            .map(|name| verify_bank(banks.get(name), depth, limits))
            .collect(),
    )
}
