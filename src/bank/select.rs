//! Which bank boots next, and why the other one would not: the boot loader's rule.
//!
//! As esx-boot's `bank_scan` and `bank_auto_select` decide it (safeboot/bootbank.c): a file
//! the loader cannot parse drops the bank (:142); `updated` must be non-zero as the loader's
//! `uint32_t` holds it (:150), `build` non-empty (:154), `quickboot` zero (:182, any non-zero
//! value); `bootstate` 0 boots as it is, 1 boots once the loader has patched it to 2 in place,
//! which needs the digit within the first 512 bytes (:161, config.c:191; an unpatchable one
//! drops the bank); 2, 3 and any other value make it invalid (:165-179). A missing `bootstate`
//! is 0 (its default, config.c:25). The eligible bank with the highest `updated` boots
//! (:237); on a tie the loader keeps the first partition it scanned, which statectl cannot
//! see: it takes the bootbank and reports the tie.
//!
//! Where the documented contract (docs/reference.md) and common ESXi lore say otherwise, the code is followed:
//! - ESXI.md "`quickboot` not 1": any non-zero `quickboot` makes the bank ineligible
//!   (safeboot/bootbank.c:182 `if (bank->quickboot)`).
//! - The contract "`bootstate` is 0 or 1 and can be patched within the first 512 bytes": the loader
//!   patches only when the state changes (bootbank.c:195), so `bootstate=0` past byte 512, or
//!   no `bootstate` at all, boots; only `bootstate=1` needs the digit within the window. The
//!   patch finds its line with its own scanner (config.c:96 `scan_config`), which accepts
//!   `bootstate = 1` and takes the *first* such line, where the parser takes the last one.
//! - The contract "a key matches only as `key=` or `key= value`": also any prefix of the key
//!   (`up=9` is `updated`, `=x` is `build`, bootlib/parse.c:64).

use std::path::{Path, PathBuf};

use super::loader::BOOTSTATE_WINDOW;
use super::BootCfg;
use crate::host::Host;

/// The two banks by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BankName {
    Bootbank,
    Altbootbank,
}

impl BankName {
    pub fn as_str(self) -> &'static str {
        match self {
            BankName::Bootbank => "bootbank",
            BankName::Altbootbank => "altbootbank",
        }
    }

    pub fn other(self) -> BankName {
        match self {
            BankName::Bootbank => BankName::Altbootbank,
            BankName::Altbootbank => BankName::Bootbank,
        }
    }
}

/// One bank as read from disk.
#[derive(Debug, Clone)]
pub struct Bank {
    pub name: BankName,
    pub path: PathBuf,
    /// The parsed `boot.cfg`, or why it could not be read.
    pub cfg: Result<BootCfg, String>,
}

impl Bank {
    pub fn read(name: BankName, path: &Path) -> Bank {
        let file = path.join("boot.cfg");
        // Non-blocking and bounded: a FIFO or device planted there is a reason, not a hang.
        let cfg = match crate::fs::hostfile::read_bounded(&file, super::bootcfg::MAX_BOOTCFG_BYTES)
        {
            Ok(None) => Err("no boot.cfg".to_string()),
            Err(err) => Err(format!("boot.cfg cannot be read: {err:#}")),
            Ok(Some(bytes)) => Ok(BootCfg::from_bytes(&bytes)),
        };
        Bank {
            name,
            path: path.to_path_buf(),
            cfg,
        }
    }

    /// `Ok` when the loader would consider this bank, else the reason in words.
    pub fn eligibility(&self) -> Result<(), String> {
        let cfg = self.cfg.as_ref().map_err(Clone::clone)?;
        if let Some(reason) = cfg.loader_error() {
            return Err(format!("boot.cfg cannot be parsed: {reason}"));
        }
        if cfg.updated() == 0 {
            return Err(format!(
                "updated is 0 or missing to the loader: the bank never completed an install{}",
                lookalike_hint(cfg, "updated")
            ));
        }
        if cfg.build().is_none() {
            return Err(format!("build is empty{}", lookalike_hint(cfg, "build")));
        }
        if cfg.quickboot() != 0 {
            return Err(format!(
                "quickboot={}: the bank is staged for Quick Boot only",
                cfg.quickboot()
            ));
        }
        bootstate_eligibility(cfg)
    }

    pub fn is_eligible(&self) -> bool {
        self.eligibility().is_ok()
    }

    /// `updated` as the loader reads it (0 when the file is unusable to it).
    pub fn updated(&self) -> u64 {
        self.usable_cfg().map_or(0, |c| u64::from(c.updated()))
    }

    /// `build` as the loader reads it.
    pub fn build(&self) -> Option<&str> {
        self.usable_cfg().and_then(BootCfg::build)
    }

    /// `bootstate` as the loader reads it, `None` when the file is missing or unusable.
    pub fn bootstate(&self) -> Option<i32> {
        self.usable_cfg().map(BootCfg::bootstate)
    }

    /// The parsed file when the loader can use it.
    pub fn usable_cfg(&self) -> Option<&BootCfg> {
        self.cfg
            .as_ref()
            .ok()
            .filter(|c| c.loader_error().is_none())
    }

    pub fn state_archive(&self) -> PathBuf {
        self.path.join(crate::archive::STATE_NAME)
    }
}

fn bootstate_eligibility(cfg: &BootCfg) -> Result<(), String> {
    match cfg.bootstate() {
        0 => Ok(()),
        1 if cfg.bootstate_patchable() => Ok(()),
        1 => Err(format!(
            "bootstate=1 but the loader cannot patch it to 2 within the first \
             {BOOTSTATE_WINDOW} bytes of boot.cfg, so it skips the bank"
        )),
        2 => Err(
            "bootstate=2: a boot of this bank was attempted and not confirmed; \
                  the loader will mark it invalid"
                .into(),
        ),
        3 => Err(
            "bootstate=3: the bank is marked invalid (a failed upgrade or a \
                  Shift+R rollback)"
                .into(),
        ),
        other => Err(format!("bootstate={other} is not a valid state (0 or 1)")),
    }
}

/// ", line N `key = v` is not read (a blank before `=`)" when such a line exists.
fn lookalike_hint(cfg: &BootCfg, key: &str) -> String {
    cfg.line_notes()
        .into_iter()
        .find(|n| n.note.contains(&format!("not read as `{key}`")))
        .map(|n| {
            format!(
                " (line {} `{}` has a blank before `=`, which the loader does not read as `{key}`)",
                n.line, n.text
            )
        })
        .unwrap_or_default()
}

/// Both banks.
#[derive(Debug, Clone)]
pub struct Banks {
    pub bootbank: Bank,
    pub altbootbank: Bank,
}

impl Banks {
    pub fn get(&self, name: BankName) -> &Bank {
        match name {
            BankName::Bootbank => &self.bootbank,
            BankName::Altbootbank => &self.altbootbank,
        }
    }
}

/// Reads both banks of `host`.
pub fn read_banks(host: &Host) -> Banks {
    Banks {
        bootbank: Bank::read(BankName::Bootbank, &host.bootbank),
        altbootbank: Bank::read(BankName::Altbootbank, &host.altbootbank),
    }
}

/// True when both banks are eligible with the same `updated`: the loader takes the first
/// partition it scans, which statectl cannot see (it reports the bootbank).
pub fn is_tie(banks: &Banks) -> bool {
    banks.bootbank.is_eligible()
        && banks.altbootbank.is_eligible()
        && banks.bootbank.updated() == banks.altbootbank.updated()
}

/// The bank the loader boots next, if any is eligible.
pub fn next_boot(banks: &Banks) -> Option<BankName> {
    let boot = &banks.bootbank;
    let alt = &banks.altbootbank;
    match (boot.is_eligible(), alt.is_eligible()) {
        (true, true) if alt.updated() > boot.updated() => Some(BankName::Altbootbank),
        (true, _) => Some(BankName::Bootbank),
        (false, true) => Some(BankName::Altbootbank),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(name: BankName, updated: u64, bootstate: u64, build: &str) -> Bank {
        let text = format!("bootstate={bootstate}\nbuild={build}\nupdated={updated}\n");
        Bank {
            name,
            path: PathBuf::from(name.as_str()),
            cfg: Ok(BootCfg::from_bytes(text.as_bytes())),
        }
    }

    fn choose(a: (u64, u64, &str), b: (u64, u64, &str)) -> Option<BankName> {
        next_boot(&Banks {
            bootbank: bank(BankName::Bootbank, a.0, a.1, a.2),
            altbootbank: bank(BankName::Altbootbank, b.0, b.1, b.2),
        })
    }

    #[test]
    fn the_loaders_choice_over_a_table_of_banks() {
        use BankName::*;
        let table = [
            ((3, 0, "b"), (2, 0, "b"), Some(Bootbank)),
            ((3, 0, "b"), (4, 1, "b"), Some(Altbootbank)),
            ((3, 0, "b"), (4, 2, "b"), Some(Bootbank)),
            ((3, 3, "b"), (2, 0, "b"), Some(Altbootbank)),
            ((3, 0, "b"), (4, 0, ""), Some(Bootbank)),
            ((3, 0, "b"), (3, 0, "b"), Some(Bootbank)),
            ((3, 2, "b"), (2, 3, "b"), None),
            ((0, 0, "b"), (1, 0, "b"), Some(Altbootbank)),
        ];
        for (boot, alt, expected) in table {
            assert_eq!(choose(boot, alt), expected, "{boot:?} | {alt:?}");
        }
    }

    #[test]
    fn quickboot_and_missing_cfg_make_a_bank_ineligible() {
        let cfg = BootCfg::parse("build=b\nupdated=2\nquickboot=1\n").unwrap();
        let quick = Bank {
            name: BankName::Bootbank,
            path: "x".into(),
            cfg: Ok(cfg),
        };
        assert!(quick.eligibility().unwrap_err().contains("quickboot"));
        let missing = Bank::read(BankName::Bootbank, Path::new("/nonexistent-statectl"));
        assert_eq!(missing.eligibility().unwrap_err(), "no boot.cfg");
    }
}
