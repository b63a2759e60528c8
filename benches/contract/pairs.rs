//! `--restore-pairs`: `restore` into an empty root and `extract` into a new directory at 10,000
//! files, each against GNU `tar -x` of the same inner `local.tgz` followed by `sync -f`, in ten
//! alternating pairs (tar, then statectl, then the next pair), so a load that comes and goes hits
//! both sides of a pair alike. Prints every pair's ratio, the median and the maximum, and the
//! targets (docs/performance.md): restore median at most 1.3x and no pair over 1.6x, extract
//! median at most 1.1x.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{ms, run_once, shell};
use crate::{lay_out, statectl, statectl_bin};

const FILES: usize = 10_000;
const PAIRS: usize = 10;

/// One writer's pairs: statectl's wall / tar's wall, in run order.
struct Pairs {
    command: &'static str,
    ratios: Vec<f64>,
    max_median: f64,
    max_any: Option<f64>,
}

impl Pairs {
    fn median(&self) -> f64 {
        let mut sorted = self.ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        match sorted.len() % 2 {
            0 => (sorted[mid - 1] + sorted[mid]) / 2.0,
            _ => sorted[mid],
        }
    }

    fn max(&self) -> f64 {
        self.ratios.iter().copied().fold(0.0, f64::max)
    }

    fn pass(&self) -> bool {
        self.median() <= self.max_median && self.max_any.is_none_or(|m| self.max() <= m)
    }
}

/// Runs both writers' pairs under `base` (left there when `keep`); false when a target is
/// missed.
pub fn restore_pairs(base: &Path, keep: bool) -> bool {
    let (root, run) = lay_out(base, "pairs");
    crate::corpus::host(&root, 3, FILES, 100, 4 << 10, None);
    run_once(&mut statectl(&root, &run, &["backup"]));
    let scratch = base.join("pairs-scratch");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let archive = root.join("bootbank/state.tgz");
    let unpack = format!(r#"cd "$1" && tar -xzf "{}" local.tgz"#, archive.display());
    run_once(&mut shell(&unpack, &[&scratch]));
    let target = scratch.join("out");
    let restore_run = scratch.join("restore-run");
    let restore = pairs("restore (empty root)", &scratch, &target, true, || {
        let mut cmd = Command::new(statectl_bin());
        cmd.env("STATECTL_RUN_DIR", &restore_run)
            .arg("--root")
            .arg(&target)
            .args(["-q", "restore"])
            .arg(&archive);
        cmd
    });
    let extract = pairs("extract", &scratch, &target, false, || {
        let mut cmd = statectl(&root, &run, &["extract"]);
        cmd.arg(&archive).arg("--to").arg(&target);
        cmd
    });
    let restore = Pairs {
        ratios: restore,
        max_median: 1.3,
        max_any: Some(1.6),
        ..Pairs::new("restore (empty root)")
    };
    let extract = Pairs {
        ratios: extract,
        max_median: 1.1,
        ..Pairs::new("extract")
    };
    let ok = [&restore, &extract].iter().all(|p| p.pass());
    print(&[restore, extract]);
    if !keep {
        for dir in [&root, &run, &scratch] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    ok
}

impl Pairs {
    fn new(command: &'static str) -> Pairs {
        Pairs {
            command,
            ratios: Vec::new(),
            max_median: 0.0,
            max_any: None,
        }
    }
}

/// A warm-up of each side, then [`PAIRS`] pairs of `tar -x` + `sync -f` and `ours` into
/// `target` (an empty directory when `empty_dir`, else absent); prints each pair as it runs.
fn pairs(
    command: &str,
    scratch: &Path,
    target: &PathBuf,
    empty_dir: bool,
    ours: impl Fn() -> Command,
) -> Vec<f64> {
    let inner = scratch.join("local.tgz");
    let untar = r#"mkdir -p "$2" && tar -xzf "$1" -C "$2" && sync -f "$2""#;
    let fresh = || {
        let _ = std::fs::remove_dir_all(target);
        if empty_dir {
            std::fs::create_dir_all(target).expect("empty target");
        }
        let _ = Command::new("sync").status();
    };
    let mut ratios = Vec::new();
    for pair in 0..=PAIRS {
        fresh();
        let tar = run_once(&mut shell(untar, &[&inner, target]));
        fresh();
        let run = run_once(&mut ours());
        if pair == 0 {
            continue; // warm-up
        }
        let ratio = ms(run.wall) / ms(tar.wall);
        println!(
            "{command:<22} pair {pair:>2}: {:>8.1} ms vs tar -x + sync -f {:>8.1} ms  {ratio:.2}x",
            ms(run.wall),
            ms(tar.wall)
        );
        ratios.push(ratio);
    }
    fresh();
    ratios
}

fn print(all: &[Pairs]) {
    println!(
        "\n{:<22} {:>8} {:>8} {:>8}  {:<28} result",
        "command", "median", "min", "max", "target"
    );
    for p in all {
        let min = p.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let target = match p.max_any {
            Some(any) => format!("median <= {}x, each <= {any}x", p.max_median),
            None => format!("median <= {}x", p.max_median),
        };
        let result = if p.pass() { "PASS" } else { "FAIL" };
        println!(
            "{:<22} {:>7.2}x {:>7.2}x {:>7.2}x  {target:<28} {result}",
            p.command,
            p.median(),
            min,
            p.max()
        );
    }
}
