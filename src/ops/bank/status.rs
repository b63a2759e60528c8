//! `bank status`: both banks as the loader sees them, and which one boots next.
//!
//! Each bank's values are the ones the loader uses (see `bank::loader`), with every line it
//! ignores or reads otherwise than it looks (`updated = 3`, an overridden duplicate, a key
//! prefix) and a tie (both eligible, same `updated`) said as such.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::readable_banks;
use crate::archive::envelope::probe::probe;
use crate::archive::streams::HashingReader;
use crate::archive::Limits;
use crate::bank::bootcfg::LineNote;
use crate::bank::{is_tie, next_boot, Bank, BankName};
use crate::host::Host;

/// The report (its JSON form is the contract's).
#[derive(Debug, Clone, Serialize)]
pub struct BankStatus {
    pub next_boot: Option<BankName>,
    /// Both banks eligible with the same `updated`: the loader takes the first partition it
    /// scans; statectl reports the bootbank.
    pub tie: bool,
    pub banks: Vec<BankEntry>,
    /// Archives that exist but could not be read (the bank is still reported).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One bank: `boot.cfg` values (null when absent or unparsable), eligibility, archive.
#[derive(Debug, Clone, Serialize)]
pub struct BankEntry {
    pub name: BankName,
    pub path: PathBuf,
    pub updated: Option<u64>,
    pub bootstate: Option<i32>,
    pub build: Option<String>,
    pub quickboot: Option<i32>,
    pub eligible: bool,
    pub reason: Option<String>,
    pub archive: Option<ArchiveInfo>,
    /// Lines the loader ignores or reads otherwise than they look.
    pub ignored: Vec<LineNote>,
}

/// The bank's `state.tgz`.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInfo {
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub sha256: String,
    /// `"none-mode"` or `"tpm"` for the encrypted layout (ESXi 7.0 U2+), null for plain.
    pub encrypted: Option<&'static str>,
}

/// Reads both banks; fails only when a bank directory cannot be listed.
pub fn bank_status(host: &Host) -> Result<BankStatus> {
    let banks = readable_banks(host)?;
    let mut warnings = Vec::new();
    let entries = [&banks.bootbank, &banks.altbootbank]
        .into_iter()
        .map(|bank| entry(bank, &mut warnings))
        .collect();
    Ok(BankStatus {
        next_boot: next_boot(&banks),
        tie: is_tie(&banks),
        banks: entries,
        warnings,
    })
}

fn entry(bank: &Bank, warnings: &mut Vec<String>) -> BankEntry {
    let cfg = bank.usable_cfg();
    let path = bank.state_archive();
    let archive = match archive_info(&path) {
        Ok(info) => info,
        Err(err) => {
            warnings.push(format!("cannot read `{}`: {err}", path.display()));
            None
        }
    };
    BankEntry {
        name: bank.name,
        path: bank.path.clone(),
        updated: cfg.map(|c| u64::from(c.updated())),
        bootstate: cfg.map(|c| c.bootstate()),
        build: cfg.and_then(|c| c.build()).map(str::to_string),
        quickboot: cfg.map(|c| c.quickboot()),
        eligible: bank.is_eligible(),
        reason: bank.eligibility().err(),
        archive,
        ignored: bank
            .cfg
            .as_ref()
            .map(|c| c.line_notes())
            .unwrap_or_default(),
    }
}

/// Size, mtime and sha256 of `path`; `None` when there is no such file.
pub fn archive_info(path: &std::path::Path) -> io::Result<Option<ArchiveInfo>> {
    let (file, meta) = match crate::fs::hostfile::open_nonblocking(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(err) => return Err(io::Error::other(format!("{err:#}"))),
    };
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut reader = HashingReader::new(file);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(Some(ArchiveInfo {
        size: meta.len(),
        mtime: meta.mtime(),
        sha256: reader.hex_digest(),
        encrypted: probe(path, &Limits::default()).label(),
    }))
}
