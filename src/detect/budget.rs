//! The selection walk's budget: how many directories and directory entries it has visited and
//! how many files it selected, against limits, so that however directory links multiply the
//! paths (a loop-free "diamond" of links doubles them at each level) the walk stops, exit 1
//! naming where, within seconds instead of exponential time.

use anyhow::{bail, Result};

use crate::archive::Limits;

/// What the walk has visited so far, against its limits: however directory links multiply
/// the paths (a loop-free "diamond" of links doubles them at each level), the walk stops.
#[derive(Debug, Default)]
pub struct Budget {
    dirs: u64,
    entries: u64,
}

/// Directories one selection walk may visit: the entry limit of every archive reader.
const MAX_DIRS: u64 = 100_000;
/// Directory entries one selection walk may look at (ten for each entry an archive may hold).
const MAX_LISTED: u64 = 1_000_000;

impl Budget {
    /// Counts one directory with `entries` entries (met as `rel`), and the `files` selected so
    /// far; past a limit the selection stops with an error naming it.
    pub fn count(&mut self, rel: &str, entries: usize, files: usize) -> Result<()> {
        self.dirs += 1;
        self.entries += entries as u64;
        let max_files = Limits::default().max_entries;
        let over = if files as u64 > max_files {
            Some(format!(
                "{files} files, over the {max_files}-entry limit of every archive reader"
            ))
        } else if self.dirs > MAX_DIRS {
            Some(format!("{MAX_DIRS} directories visited"))
        } else if self.entries > MAX_LISTED {
            Some(format!("{MAX_LISTED} directory entries looked at"))
        } else {
            None
        };
        match over {
            Some(what) => bail!(
                "the selection walk stopped at `{}`: {what} (directory links may multiply the \
                 paths); nothing was written; exclude directories (statectl.toml `exclude` or \
                 `scan`) and run again",
                rel.escape_debug()
            ),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_stops_past_each_limit_naming_it() {
        let mut budget = Budget::default();
        for _ in 0..MAX_DIRS {
            budget.count("etc", 1, 0).unwrap();
        }
        let err = budget.count("etc/maze/a/b", 1, 0).unwrap_err().to_string();
        assert!(
            err.contains("etc/maze/a/b") && err.contains("directories"),
            "{err}"
        );
        let mut budget = Budget::default();
        assert!(budget.count("etc", MAX_LISTED as usize + 1, 0).is_err());
        assert!(Budget::default().count("etc", 0, 100_001).is_err());
    }
}
