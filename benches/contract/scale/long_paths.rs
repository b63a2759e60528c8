//! Reader/writer agreement at the limits (the scale section's last rows): 100,000 files with
//! 200-byte paths, which `pack` and `backup` write, must be read by every command that reads
//! an archive (`list`, `verify`, `extract`, `restore`, `install`, `status`, `backup`) in under
//! 64 MiB of peak RSS. Run with the full benchmark, or alone with `--scale-only --long-paths`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ScaleRow;
use crate::measure::run_once;
use crate::{lay_out, statectl};

const FILES: usize = 100_000;
const PATH_BYTES: usize = 200;

/// True when the long-path rows are measured: the full benchmark, or `--long-paths`.
pub fn wanted(args: &[String], quick: bool) -> bool {
    let full = !quick && !args.iter().any(|a| a == "--scale-sizes");
    full || args.iter().any(|a| a == "--long-paths")
}

/// Writes [`FILES`] empty T-flagged files with [`PATH_BYTES`]-byte root-relative paths
/// (long names, in 500 directories) under `dir`.
fn lay_out_files(dir: &Path) {
    for i in 0..FILES {
        let prefix = format!("etc/d{:03}/f{i:06}-", i % 500);
        let rel = format!("{prefix}{}", "p".repeat(PATH_BYTES - prefix.len()));
        let path = dir.join(&rel);
        if i < 500 {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("bench dir");
        }
        std::fs::write(&path, b"").expect("bench file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o1644))
            .expect("bench file mode");
    }
}

/// Packs the files, then runs every reader on the archive, one row each.
pub fn measure(base: &Path) -> Vec<ScaleRow> {
    let (root, run) = lay_out(base, "long-paths");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::write(root.join("etc/statectl.toml"), "select = \"sticky\"\n").expect("config");
    let tree = base.join("long-paths-tree");
    lay_out_files(&tree);
    let archive = base.join("long-paths.tgz");
    let out = base.join("long-paths-out");
    let (t, a, o) = (
        tree.to_str().expect("utf-8 bench path"),
        archive.to_str().expect("utf-8 bench path"),
        out.to_str().expect("utf-8 bench path"),
    );
    let steps: [(&'static str, Vec<&str>); 9] = [
        ("pack (200-byte paths)", vec!["pack", t, "--output", a]),
        ("list (200-byte paths)", vec!["list", a]),
        ("verify (200-byte paths)", vec!["verify", a]),
        ("extract (200-byte paths)", vec!["extract", a, "--to", o]),
        (
            "restore --dry-run (200-byte paths)",
            vec!["restore", "--dry-run", a],
        ),
        ("restore (200-byte paths)", vec!["restore", a]),
        ("install (200-byte paths)", vec!["install", "--force", a]),
        ("status (200-byte paths, no cache)", vec!["status"]),
        ("backup --force (200-byte paths)", vec!["backup", "--force"]),
    ];
    let mut rows = Vec::new();
    for (name, args) in steps {
        if args[0] == "status" {
            let _ = std::fs::remove_dir_all(&run);
        }
        // After restore and install the root matches the bank's archive: status exits 0.
        let measured = run_once(&mut statectl(&root, &run, &args));
        rows.push(ScaleRow::new(FILES, name, measured).rss_at_most(Some(64.0)));
    }
    for dir in [&root, &run, &tree, &out] {
        let _ = std::fs::remove_dir_all(dir);
    }
    rows
}
