//! `bank set-next`: make a bank boot next by raising its `updated` above the other's.
//!
//! Only the `updated` value changes (and, with `--force`, `bootstate` becomes 0), through the
//! one rewriter, under both banks' locks (statectl's and ESXi's PID locks): the other bank's
//! `updated` cannot change between our read and our write, so two concurrent calls end as one
//! of them alone would, never tied. Values are the loader's (`updated` is its `uint32_t`, so the
//! raised value must stay below 2^32). A `boot.cfg` the loader cannot use is never rewritten.
//! A bank whose `updated` is already strictly higher is left alone. The report's next boot is
//! the model's reading of the files after the write.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bank::{bootcfg, is_tie, next_boot, read_banks, Bank, BankName, BootCfg};
use crate::host::Host;
use crate::lock::lock_for_writing;

#[derive(Debug, Clone)]
pub struct SetNextOptions {
    pub bank: BankName,
    pub force: bool,
    pub wait: Duration,
}

/// The values set-next may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Values {
    pub updated: u64,
    pub bootstate: i32,
}

impl Values {
    fn of(cfg: &BootCfg) -> Values {
        Values {
            updated: u64::from(cfg.updated()),
            bootstate: cfg.bootstate(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SetNextReport {
    pub bank: BankName,
    pub boot_cfg: PathBuf,
    pub changed: bool,
    pub before: Values,
    pub after: Values,
    /// The other bank's `updated`.
    pub other_updated: u64,
    pub next_boot: Option<BankName>,
    /// Both banks eligible with the same `updated` after the change.
    pub tie: bool,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

pub fn set_next(host: &Host, options: &SetNextOptions) -> Result<SetNextReport> {
    let name = options.bank;
    let path = match name {
        BankName::Bootbank => &host.bootbank,
        BankName::Altbootbank => &host.altbootbank,
    };
    let _locks = lock_for_writing(
        host,
        &[host.bootbank.as_path(), host.altbootbank.as_path()],
        options.wait,
    )?;
    // A cut FAT rename may have left the archive only under a temp name: recover it first.
    crate::archive::recover::recover_state(path, &host.limits)?;
    crate::fs::atomic::remove_stale_temps(path)
        .with_context(|| format!("cannot clean bank `{}`", path.display()))?;
    let file = path.join("boot.cfg");
    let cfg = BootCfg::load(&file)?;
    let banks = read_banks(host);
    let bank = Bank {
        cfg: Ok(cfg.clone()),
        ..banks.get(name).clone()
    };
    if let Err(reason) = bank.eligibility() {
        if !options.force {
            bail!(
                "bank {} `{}` is not eligible: {reason}; the loader would skip it. Fix its \
                 boot.cfg, or pass --force to make it eligible (sets bootstate=0)",
                name.as_str(),
                path.display()
            );
        }
    }
    let other_updated = banks.get(name.other()).updated();
    let updated = planned(&cfg, other_updated, options.force)
        .map_err(|reason| anyhow::anyhow!("cannot change `{}`: {reason}", file.display()))?;
    let changed = updated.bytes() != cfg.bytes();
    if changed {
        bootcfg::save(&file, &updated)?;
    }
    let after = read_banks(host);
    let mut warnings = Vec::new();
    if let Err(reason) = after.get(name).eligibility() {
        warnings.push(format!(
            "bank {} is still not eligible ({reason}); the loader will not boot it",
            name.as_str()
        ));
    }
    Ok(SetNextReport {
        bank: name,
        boot_cfg: file,
        changed,
        before: Values::of(&cfg),
        after: Values::of(&updated),
        other_updated,
        next_boot: next_boot(&after),
        tie: is_tie(&after),
        warnings,
    })
}

/// `cfg` with `updated` raised to `other_updated + 1` unless already higher, and with `force`
/// a non-zero `bootstate` set to 0.
fn planned(cfg: &BootCfg, other_updated: u64, force: bool) -> Result<BootCfg, String> {
    let mut next = cfg.clone();
    if u64::from(next.updated()) <= other_updated {
        let raised = other_updated
            .checked_add(1)
            .filter(|&n| n <= u64::from(u32::MAX))
            .ok_or("the other bank's updated is at the loader's maximum (2^32-1)")?;
        next = next.with_value("updated", &raised.to_string())?;
    }
    if force && cfg.bootstate() != 0 {
        next = next.with_value("bootstate", "0")?;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_needed_values_change() {
        let cfg = BootCfg::parse("bootstate=3\nbuild=b\nupdated=2\n").unwrap();
        let raised = planned(&cfg, 5, false).unwrap();
        assert_eq!(raised.bytes(), b"bootstate=3\nbuild=b\nupdated=6\n");
        let forced = planned(&cfg, 1, true).unwrap();
        assert_eq!(forced.bytes(), b"bootstate=0\nbuild=b\nupdated=2\n");
        assert!(planned(&cfg, u64::from(u32::MAX), false).is_err());
        let spaced = BootCfg::parse("build=b\nupdated = 3\n").unwrap();
        let fixed = planned(&spaced, 5, false).unwrap();
        assert_eq!(fixed.bytes(), b"build=b\nupdated=6\n");
    }
}
