//! The scale section of the benchmark: the same commands at 1,000, 10,000 and 100,000 flagged
//! files, each with its wall time and peak RSS next to a baseline run on the same files in the
//! same run (docs/performance.md "Targets").
//!
//! Baselines: a bare stat walk (`find -perm -1000`) for the no-change backup; GNU `tar -x` of the
//! same inner `local.tgz` followed by one `sync -f` for `extract` and `restore` (both durable at
//! the end); the auto-backup.sh-style check for the cold-cache no-change run (the stat cache in
//! the run directory removed, as after a reboot, and the page cache dropped when
//! `/proc/sys/vm/drop_caches` is writable; else only the stat cache is dropped, and the row
//! says so).

pub mod long_paths;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{median, ms, run_once, shell, Run};
use crate::{lay_out, statectl, AUTO_BACKUP_CHECK};

/// One measured command at one size, with its baseline when it has one.
pub struct ScaleRow {
    files: usize,
    command: &'static str,
    ours: Run,
    baseline: Option<(&'static str, Run)>,
    /// Upper bound on wall / baseline wall.
    max_ratio: Option<f64>,
    /// Upper bound on peak RSS in MiB.
    max_rss_mib: Option<f64>,
}

impl ScaleRow {
    fn ratio(&self) -> Option<f64> {
        self.baseline.map(|(_, b)| ms(self.ours.wall) / ms(b.wall))
    }

    fn rss_mib(&self) -> f64 {
        self.ours.max_rss_kib as f64 / 1024.0
    }

    /// `None` when the row has no target, else whether it met every target it has.
    pub fn pass(&self) -> Option<bool> {
        let ratio = self
            .max_ratio
            .map(|max| self.ratio().is_some_and(|r| r <= max));
        let rss = self.max_rss_mib.map(|max| self.rss_mib() <= max);
        match (ratio, rss) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(true) && b.unwrap_or(true)),
        }
    }
}

/// Sizes of the scale section: the contract's, or `--scale-sizes 1000,10000` when given.
pub fn sizes(args: &[String], quick: bool) -> Vec<usize> {
    if let Some(i) = args.iter().position(|a| a == "--scale-sizes") {
        let list = args.get(i + 1).map(String::as_str).unwrap_or("");
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    if quick {
        vec![1_000]
    } else {
        vec![1_000, 10_000, 100_000]
    }
}

/// Runs every command at every size; rows in size order.
pub fn scale(base: &Path, sizes: &[usize]) -> Vec<ScaleRow> {
    let mut rows = Vec::new();
    for &files in sizes {
        let host = ScaleHost::new(base, files);
        host.measure(&mut rows);
        host.remove();
    }
    rows
}

/// Runs per measurement: fewer at the largest sizes, where one run takes seconds.
fn runs_for(files: usize) -> usize {
    if files >= 50_000 {
        1
    } else {
        3
    }
}

struct ScaleHost {
    files: usize,
    root: PathBuf,
    run: PathBuf,
    scratch: PathBuf,
}

impl ScaleHost {
    fn new(base: &Path, files: usize) -> ScaleHost {
        let name = format!("scale-{files}");
        let (root, run) = lay_out(base, &name);
        // Small config files (100 B - 4 KiB): the cost under test is per file, not per byte.
        crate::corpus::host(&root, 3, files, 100, 4 << 10, None);
        let scratch = base.join(format!("{name}-scratch"));
        std::fs::create_dir_all(&scratch).expect("scratch dir");
        ScaleHost {
            files,
            root,
            run,
            scratch,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        statectl(&self.root, &self.run, args)
    }

    fn archive(&self) -> PathBuf {
        self.root.join("bootbank/state.tgz")
    }

    fn measure(&self, rows: &mut Vec<ScaleRow>) {
        let (n, runs) = (self.files, runs_for(self.files));
        let contract = n >= 100_000;
        let small_rss = contract.then_some(32.0);
        let first = median(runs, || self.forget_archive(), || self.cmd(&["backup"]));
        rows.push(ScaleRow::new(n, "first backup", first).rss_at_most(small_rss));
        let walk = median(
            runs + 2,
            || {},
            || shell(r#"find "$1/etc" -type f -perm -1000"#, &[&self.root]),
        );
        let no_change = median(runs + 2, || {}, || self.cmd(&["backup"]));
        let max_walk = if contract { 2.0 } else { 3.0 };
        let walk_ratio = (n >= 10_000).then_some(max_walk);
        let row = ScaleRow::new(n, "no-change backup", no_change);
        rows.push(row.against("find stat walk", walk, walk_ratio));
        let status = median(runs, || {}, || self.cmd(&["status"]));
        rows.push(ScaleRow::new(n, "status", status).rss_at_most(small_rss));
        let reader_rss = contract.then_some(64.0);
        for command in ["verify", "list"] {
            let run = median(runs, || {}, || self.cmd(&[command]));
            rows.push(ScaleRow::new(n, command, run).rss_at_most(reader_rss));
        }
        self.measure_writers(rows, runs, reader_rss);
        self.measure_cold(rows);
    }

    /// `extract` and `restore` into an empty directory vs `tar -x` + `sync -f` of the same files.
    fn measure_writers(&self, rows: &mut Vec<ScaleRow>, runs: usize, reader_rss: Option<f64>) {
        let n = self.files;
        let inner = self.scratch.join("local.tgz");
        let unpack = format!(
            r#"cd "$1" && tar -xzf "{}" local.tgz"#,
            self.archive().display()
        );
        run_once(&mut shell(&unpack, &[&self.scratch]));
        let target = self.scratch.join("out");
        let fresh = || {
            let _ = std::fs::remove_dir_all(&target);
        };
        let empty_target = || {
            fresh();
            std::fs::create_dir_all(&target).expect("empty target");
        };
        let untar = r#"tar -xzf "$1" -C "$2" && sync -f "$2""#;
        let tar = median(runs, empty_target, || shell(untar, &[&inner, &target]));
        let ratio = (n == 10_000).then_some(2.0);
        let archive = self.archive();
        let archive_arg = archive.to_str().expect("utf-8 bench path");
        let target_arg = target.to_str().expect("utf-8 bench path");
        let extract = median(runs, fresh, || {
            self.cmd(&["extract", archive_arg, "--to", target_arg])
        });
        let row = ScaleRow::new(n, "extract", extract).rss_at_most(reader_rss);
        rows.push(row.against("tar -x + sync -f", tar, ratio));
        let restore_run = self.scratch.join("restore-run");
        let restore = median(runs, empty_target, || {
            let mut cmd = Command::new(crate::statectl_bin());
            cmd.env("STATECTL_RUN_DIR", &restore_run).args([
                "--root",
                target_arg,
                "-q",
                "restore",
                archive_arg,
            ]);
            cmd
        });
        let row = ScaleRow::new(n, "restore (empty root)", restore).rss_at_most(reader_rss);
        rows.push(row.against("tar -x + sync -f", tar, ratio));
        fresh();
    }

    /// A no-change backup after a reboot: no stat cache, cold page cache.
    fn measure_cold(&self, rows: &mut Vec<ScaleRow>) {
        let drop_caches = || {
            let _ = std::fs::remove_dir_all(&self.run);
            drop_page_cache();
        };
        drop_caches();
        let cold = run_once(&mut self.cmd(&["backup"]));
        drop_caches();
        let check = run_once(&mut shell(AUTO_BACKUP_CHECK, &[&self.root]));
        let command = if can_drop_page_cache() {
            "cold no-change backup (no cache, after reboot)"
        } else {
            "no-change backup, stat cache lost (page cache kept)"
        };
        let row = ScaleRow::new(self.files, command, cold);
        rows.push(row.against("auto-backup.sh check", check, None));
    }

    /// Removes the archive and the stat cache, so the next backup is a first one.
    fn forget_archive(&self) {
        let _ = std::fs::remove_file(self.archive());
        let _ = std::fs::remove_dir_all(&self.run);
    }

    fn remove(&self) {
        for dir in [&self.root, &self.run, &self.scratch] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl ScaleRow {
    fn new(files: usize, command: &'static str, ours: Run) -> ScaleRow {
        ScaleRow {
            files,
            command,
            ours,
            baseline: None,
            max_ratio: None,
            max_rss_mib: None,
        }
    }

    fn against(mut self, name: &'static str, baseline: Run, max_ratio: Option<f64>) -> ScaleRow {
        self.baseline = Some((name, baseline));
        self.max_ratio = max_ratio;
        self
    }

    fn rss_at_most(mut self, max_rss_mib: Option<f64>) -> ScaleRow {
        self.max_rss_mib = max_rss_mib;
        self
    }
}

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

fn can_drop_page_cache() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(DROP_CACHES)
        .is_ok()
}

/// Writes dirty pages back and drops the page, dentry and inode caches (root only).
fn drop_page_cache() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write(DROP_CACHES, "3\n");
}

/// Prints the scale rows, one line per command and size.
pub fn print(rows: &[ScaleRow]) {
    println!(
        "\n{:>7}  {:<50} {:>10} {:>9}  {:<22} {:>10} {:>7} {:>16}  result",
        "files", "command", "wall", "peak RSS", "baseline", "its wall", "ratio", "target"
    );
    for r in rows {
        let (name, wall, ratio) = match (r.baseline, r.ratio()) {
            (Some((name, run)), Some(ratio)) => (
                name,
                format!("{:.1} ms", ms(run.wall)),
                format!("{ratio:.2}x"),
            ),
            _ => ("", String::new(), String::new()),
        };
        let target = match (r.max_ratio, r.max_rss_mib) {
            (Some(x), Some(m)) => format!("<= {x}x, {m} MiB"),
            (Some(x), None) => format!("<= {x}x"),
            (None, Some(m)) => format!("<= {m} MiB"),
            (None, None) => String::new(),
        };
        let result = match r.pass() {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "{:>7}  {:<50} {:>10} {:>9}  {:<22} {:>10} {:>7} {:>16}  {result}",
            r.files,
            r.command,
            format!("{:.1} ms", ms(r.ours.wall)),
            format!("{:.1} MiB", r.rss_mib()),
            name,
            wall,
            ratio,
            target
        );
    }
}
