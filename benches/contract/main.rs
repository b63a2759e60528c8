//! The performance contract (docs/reference.md "Performance"), measured as ratios in one run
//! (`scripts/bench.sh`).
//!
//! Builds fake hosts from deterministic config-like text, then times the release `statectl`
//! against baselines run on the same files in the same run, process against process:
//! (a) a no-change `backup` of 10,000 flagged files vs a bare stat walk (`find -perm`) and vs an
//! auto-backup.sh-style check (extract both layers with tar, `cmp` each selected file);
//! (b) a full `backup --force` of 100 MiB vs `tar -czf local.tgz; tar -czf state.tgz`;
//! (c) the full backup's peak RSS; (d) peak RSS of `verify`, `list` and `restore --dry-run`
//! reading a 10 MiB vs a 100 MiB archive of the same number of files; (e) the encrypted layout
//! (see [`encrypted`]); (f) the scale section ([`scale`]): every command at 1,000 / 10,000 /
//! 100,000 files with wall time and peak RSS against its baseline. Prints the tables and exits 1
//! when a target is missed. `--quick` shrinks the hosts; `--scale-only` runs just (f),
//! `--scale-sizes 1000,10000` picks its sizes (`--long-paths` adds the 100,000 200-byte-path
//! rows of [`scale::long_paths`], part of every full run); `--keep` leaves the hosts in place
//! for profiling; (g) the fleet section ([`fleet`]): `drift` and `history` over 100 and 1,000
//! hosts x 24 copies (`--fleet-only` runs just that); `--restore-pairs` runs only [`pairs`]:
//! restore and extract against `tar -x` + `sync -f` in ten alternating pairs at 10,000 files.

mod configstore;
mod corpus;
mod encrypted;
mod fleet;
mod measure;
mod pairs;
mod scale;

use std::path::{Path, PathBuf};
use std::process::Command;

use measure::{median, ms, run_once, shell};

const STATECTL: &str = env!("CARGO_BIN_EXE_statectl");
const BOOT_CFG: &str = "bootstate=0\ntitle=Loading VMware ESXi\nkernel=/b.b00\n\
    modules=/b.b00 --- /s.v00\nbuild=7.0.3-0.20.19193900\nupdated=3\n";

struct Sizes {
    flagged: usize,
    full_bytes: u64,
    small_bytes: u64,
    runs: usize,
    slow_runs: usize,
}

struct Row {
    metric: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            flagged: 2_000,
            full_bytes: 20 << 20,
            small_bytes: 2 << 20,
            runs: 3,
            slow_runs: 1,
        }
    } else {
        Sizes {
            flagged: 10_000,
            full_bytes: 100 << 20,
            small_bytes: 10 << 20,
            runs: 7,
            slow_runs: 3,
        }
    };
    let base = match args.iter().position(|a| a == "--dir") {
        Some(i) => PathBuf::from(&args[i + 1]),
        None => std::env::temp_dir().join("statectl-bench"),
    };
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("bench dir");
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    if args.iter().any(|a| a == "--restore-pairs") {
        let keep = args.iter().any(|a| a == "--keep");
        let ok = pairs::restore_pairs(&base, keep);
        if !keep {
            let _ = std::fs::remove_dir_all(&base);
        }
        std::process::exit(if ok { 0 } else { 1 });
    }
    if args.iter().any(|a| a == "--configstore-only") {
        configstore::configstore(&base, &sizes, &mut rows);
        print_table(&rows, &base, quick, started.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&base);
        return;
    }
    let fleet_only = args.iter().any(|a| a == "--fleet-only");
    if !args.iter().any(|a| a == "--scale-only") && !fleet_only {
        no_change(&base, &sizes, &mut rows);
        full_backup(&base, &sizes, &mut rows);
        encrypted::encrypted(&base, &sizes, &mut rows);
        configstore::configstore(&base, &sizes, &mut rows);
    }
    if !args.iter().any(|a| a == "--scale-only") {
        fleet::fleet(&base, &mut rows);
    }
    let mut scale_rows = if fleet_only {
        Vec::new()
    } else {
        scale::scale(&base, &scale::sizes(&args, quick))
    };
    if !fleet_only && scale::long_paths::wanted(&args, quick) {
        scale_rows.extend(scale::long_paths::measure(&base));
    }
    if !rows.is_empty() {
        print_table(&rows, &base, quick, started.elapsed().as_secs_f64());
    }
    if !scale_rows.is_empty() {
        scale::print(&scale_rows);
    }
    if !args.iter().any(|a| a == "--keep") {
        let _ = std::fs::remove_dir_all(&base);
    }
    let missed = rows.iter().any(|r| r.pass == Some(false));
    if missed || scale_rows.iter().any(|r| r.pass() == Some(false)) {
        std::process::exit(1);
    }
}

/// A host under `base/name`: root with `etc`, a bootbank and an altbootbank, a run dir.
fn lay_out(base: &Path, name: &str) -> (PathBuf, PathBuf) {
    let root = base.join(name);
    for (bank, updated) in [("bootbank", 3), ("altbootbank", 2)] {
        std::fs::create_dir_all(root.join(bank)).expect("bank dir");
        let cfg = BOOT_CFG.replace("updated=3", &format!("updated={updated}"));
        std::fs::write(root.join(bank).join("boot.cfg"), cfg).expect("boot.cfg");
    }
    (root, base.join(format!("{name}-run")))
}

/// The binary under test: this build's, or `STATECTL_BENCH_BIN` (e.g. an older build, for
/// before/after figures from one run of the same harness).
fn statectl_bin() -> PathBuf {
    std::env::var_os("STATECTL_BENCH_BIN").map_or_else(|| PathBuf::from(STATECTL), PathBuf::from)
}

fn statectl(root: &Path, run_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(statectl_bin());
    cmd.env("STATECTL_RUN_DIR", run_dir)
        .arg("--root")
        .arg(root)
        .arg("-q")
        .args(args);
    cmd
}

fn no_change(base: &Path, sizes: &Sizes, rows: &mut Vec<Row>) {
    let (root, run) = lay_out(base, "flagged");
    corpus::host(&root, 1, sizes.flagged, 200, 8 << 10, None);
    run_once(&mut statectl(&root, &run, &["backup"]));
    let n = sizes.flagged;
    let ours = median(sizes.runs, || {}, || statectl(&root, &run, &["backup"]));
    let walk = median(
        sizes.runs,
        || {},
        || shell(r#"find "$1/etc" -type f -perm -1000"#, &[&root]),
    );
    let check = median(
        sizes.slow_runs,
        || {},
        || shell(AUTO_BACKUP_CHECK, &[&root]),
    );
    let vs_walk = ms(ours.wall) / ms(walk.wall);
    let vs_check = ms(check.wall) / ms(ours.wall);
    rows.push(info(
        format!("no-change backup, {n} files"),
        format!("{:.1} ms", ms(ours.wall)),
    ));
    rows.push(info(
        "  bare stat walk (find -perm -1000)".into(),
        format!("{:.1} ms", ms(walk.wall)),
    ));
    rows.push(info(
        "  auto-backup.sh-style check".into(),
        format!("{:.0} ms", ms(check.wall)),
    ));
    rows.push(judge(
        "no-change / stat walk",
        format!("{vs_walk:.2}x"),
        "<= 3x",
        vs_walk <= 3.0,
    ));
    rows.push(judge(
        "auto-backup check / no-change",
        format!("{vs_check:.0}x faster"),
        ">= 20x",
        vs_check >= 20.0,
    ));
}

/// ESXi's auto-backup.sh check: extract both layers into a temp dir, compare each selected file.
const AUTO_BACKUP_CHECK: &str = r#"
T=$(mktemp -d) && cd "$T" && tar -xzf "$1/bootbank/state.tgz" && tar -xzf local.tgz || exit 1
cd "$1" && find etc -type f -perm -1000 | while IFS= read -r f; do
  cmp -s "$f" "$T/$f" || { echo "changed: $f"; break; }
done
rm -rf "$T"
"#;

/// Files in the full-backup hosts: about 40 KiB each on average.
fn full_files(sizes: &Sizes) -> usize {
    (sizes.full_bytes / (40 << 10)) as usize
}

fn full_backup(base: &Path, sizes: &Sizes, rows: &mut Vec<Row>) {
    let (root, run) = lay_out(base, "full");
    let files = full_files(sizes);
    let bytes = corpus::host(&root, 2, files, 1 << 10, 512 << 10, Some(sizes.full_bytes));
    let out = base.join("tar-out");
    std::fs::create_dir_all(&out).expect("tar dir");
    let mib = bytes as f64 / (1 << 20) as f64;
    let ours = median(
        sizes.slow_runs,
        || {},
        || statectl(&root, &run, &["backup", "--force"]),
    );
    let tar = median(sizes.slow_runs, || {}, || shell(TAR_GZIP, &[&root, &out]));
    let ratio = ms(ours.wall) / ms(tar.wall);
    rows.push(info(
        format!("full backup --force, {mib:.0} MiB in {files} files"),
        format!("{:.0} ms", ms(ours.wall)),
    ));
    rows.push(info(
        "  tar -czf local.tgz; tar -czf state.tgz".into(),
        format!("{:.0} ms", ms(tar.wall)),
    ));
    if which("pigz") {
        let pigz = median(sizes.slow_runs, || {}, || shell(TAR_PIGZ, &[&root, &out]));
        rows.push(info(
            "  same with pigz -6 (all cores)".into(),
            format!("{:.0} ms", ms(pigz.wall)),
        ));
    }
    rows.push(judge(
        "full backup / tar+gzip",
        format!("{ratio:.2}x"),
        "<= 0.6x",
        ratio <= 0.6,
    ));
    let rss = ours.max_rss_kib as f64 / 1024.0;
    rows.push(judge(
        "full backup peak RSS",
        format!("{rss:.1} MiB"),
        "<= 32 MiB",
        rss <= 32.0,
    ));
    memory_flat(base, sizes, &root, &run, rows);
}

const TAR_GZIP: &str =
    r#"cd "$1" && tar -czf "$2/local.tgz" etc && cd "$2" && tar -czf state.tgz local.tgz"#;
const TAR_PIGZ: &str = r#"cd "$1" && tar -cf - etc | pigz -6 > "$2/local.tgz" && cd "$2" && tar -cf - local.tgz | pigz -6 > state.tgz"#;

/// Peak RSS of `verify`, `list` and `restore --dry-run` reading an archive of the same files
/// at 10x the content: what grows with the archive is the per-file records, not the content,
/// so both hosts hold the same number of files.
fn memory_flat(base: &Path, sizes: &Sizes, big: &Path, big_run: &Path, rows: &mut Vec<Row>) {
    let (small, small_run) = lay_out(base, "small");
    corpus::host(
        &small,
        2,
        full_files(sizes),
        1 << 10,
        512 << 10,
        Some(sizes.small_bytes),
    );
    run_once(&mut statectl(&small, &small_run, &["backup"]));
    let mut worst: f64 = 0.0;
    for command in [&["verify"][..], &["list"], &["restore", "--dry-run"]] {
        let peak = |root: &Path, run: &Path| -> f64 {
            let run = median(1, || {}, || statectl(root, run, command));
            run.max_rss_kib as f64 / 1024.0
        };
        let (s_mib, b_mib) = (peak(&small, &small_run), peak(big, big_run));
        worst = worst.max(b_mib / s_mib);
        rows.push(info(
            format!(
                "{}: {} vs {} MiB archive content",
                command.join(" "),
                sizes.small_bytes >> 20,
                sizes.full_bytes >> 20
            ),
            format!("{s_mib:.1} vs {b_mib:.1} MiB RSS"),
        ));
    }
    rows.push(judge(
        "archive read RSS growth (10x content, worst)",
        format!("{worst:.2}x"),
        "<= 1.25x",
        worst <= 1.25,
    ));
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn info(metric: String, value: String) -> Row {
    Row {
        metric,
        value,
        target: String::new(),
        pass: None,
    }
}

fn judge(metric: &str, value: String, target: &str, pass: bool) -> Row {
    Row {
        metric: metric.into(),
        value,
        target: target.into(),
        pass: Some(pass),
    }
}

fn print_table(rows: &[Row], base: &Path, quick: bool, secs: f64) {
    let mode = if quick {
        "quick (smaller hosts)"
    } else {
        "full"
    };
    println!(
        "\nstatectl performance contract — {mode}, in {}, {secs:.0} s",
        base.display()
    );
    println!("{:<48} {:>24} {:>10}  result", "metric", "value", "target");
    for row in rows {
        let result = match row.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "{:<48} {:>24} {:>10}  {result}",
            row.metric, row.value, row.target
        );
    }
}
