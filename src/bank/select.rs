//! Which bank boots next, and why the other one would not: the boot loader's rule.
//!
//! A bank is eligible when its `boot.cfg` parses, `bootstate` is 0 or 1, `updated` > 0, `build`
//! is non-empty and `quickboot` is not 1 (esx-boot `safeboot/bootbank.c`). The eligible bank with
//! the highest `updated` boots; a tie goes to the bootbank. A missing `bootstate=` counts as 0.

use std::path::{Path, PathBuf};

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
        let cfg = match std::fs::read(&file) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err("no boot.cfg".to_string())
            }
            Err(err) => Err(format!("boot.cfg cannot be read: {err}")),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => Err("boot.cfg cannot be parsed: it is not valid UTF-8 text".to_string()),
                Ok(text) => {
                    BootCfg::parse(&text).map_err(|r| format!("boot.cfg cannot be parsed: {r}"))
                }
            },
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
        match cfg.number("bootstate").unwrap_or(0) {
            0 | 1 => {}
            2 => {
                return Err(
                    "bootstate=2: a boot of this bank was attempted and not confirmed; \
                             the loader will mark it invalid"
                        .into(),
                )
            }
            3 => {
                return Err(
                    "bootstate=3: the bank is marked invalid (a failed upgrade or a \
                             Shift+R rollback)"
                        .into(),
                )
            }
            other => return Err(format!("bootstate={other} is not a valid state (0 or 1)")),
        }
        if cfg.number("updated").unwrap_or(0) == 0 {
            return Err("updated is 0 or missing: the bank never completed an install".into());
        }
        if cfg.get("build").is_none_or(str::is_empty) {
            return Err("build is empty".into());
        }
        if cfg.number("quickboot") == Some(1) {
            return Err("quickboot=1: the bank is staged for Quick Boot only".into());
        }
        Ok(())
    }

    pub fn is_eligible(&self) -> bool {
        self.eligibility().is_ok()
    }

    pub fn updated(&self) -> u64 {
        self.cfg
            .as_ref()
            .ok()
            .and_then(|c| c.number("updated"))
            .unwrap_or(0)
    }

    pub fn build(&self) -> Option<&str> {
        self.cfg.as_ref().ok().and_then(|c| c.get("build"))
    }

    pub fn state_archive(&self) -> PathBuf {
        self.path.join(crate::archive::STATE_NAME)
    }
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
            cfg: BootCfg::parse(&text),
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
