//! ConfigStore (ESXi 7+): a backup whose live store is a 64 MiB SQLite database (16 MiB with
//! `--quick`). Each timed run first moves the store's mtime, so every run takes a fresh
//! snapshot (online backup, integrity check) and writes the archive; beside it, the no-change
//! run with the store unchanged (its snapshot found by stat) and `cp` of the store as the
//! baseline for reading it once. Wall time and peak RSS of each.

use std::path::Path;

use super::measure::{median, ms, shell};
use super::{info, lay_out, statectl, Row, Sizes};

const LIVE: &str = "etc/vmware/configstore/current-store-1";

/// A store of `bytes` in 4 KiB rows (text that deflates about as ConfigStore's JSON does).
fn make_store(path: &Path, bytes: u64) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("configstore dir");
    let db = rusqlite::Connection::open(path).expect("store");
    db.execute_batch("CREATE TABLE config (id INTEGER PRIMARY KEY, value TEXT NOT NULL)")
        .expect("schema");
    let tx = db.unchecked_transaction().expect("transaction");
    for id in 0..(bytes / 4096) as i64 {
        let value = format!(
            "{{\"key\": \"/esx/{id}\", \"value\": \"{:x}\"}}",
            id * 2654435761
        )
        .repeat(200);
        tx.execute("INSERT INTO config VALUES (?1, ?2)", (id, &value[..3900]))
            .expect("row");
    }
    tx.commit().expect("commit");
}

pub fn configstore(base: &Path, sizes: &Sizes, rows: &mut Vec<Row>) {
    let (root, run) = lay_out(base, "configstore");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    let bytes = if sizes.flagged < 10_000 {
        16 << 20
    } else {
        64 << 20
    };
    let live = root.join(LIVE);
    make_store(&live, bytes);
    let mib = std::fs::metadata(&live).expect("store").len() as f64 / (1 << 20) as f64;
    let mut tick = 1_700_000_000;
    let mut bump = || {
        tick += 10;
        let time = filetime::FileTime::from_unix_time(tick, 0);
        filetime::set_file_mtime(&live, time).expect("touch the store");
    };
    let fresh = median(sizes.slow_runs, &mut bump, || {
        statectl(&root, &run, &["backup"])
    });
    let unchanged = median(sizes.runs, || {}, || statectl(&root, &run, &["backup"]));
    let out = base.join("configstore-copy");
    let copy = median(
        sizes.slow_runs,
        || {},
        || shell(r#"cp "$1" "$2""#, &[&root.join(LIVE), &out]),
    );
    let rss = |kib: u64| kib as f64 / 1024.0;
    rows.push(info(
        format!("backup, {mib:.0} MiB live ConfigStore moved (snapshot+check+write)"),
        format!(
            "{:.0} ms, {:.1} MiB peak RSS",
            ms(fresh.wall),
            rss(fresh.max_rss_kib)
        ),
    ));
    rows.push(info(
        "  no-change backup, store unchanged (stat only)".into(),
        format!(
            "{:.1} ms, {:.1} MiB",
            ms(unchanged.wall),
            rss(unchanged.max_rss_kib)
        ),
    ));
    rows.push(info(
        "  cp of the store (one read + write)".into(),
        format!("{:.0} ms", ms(copy.wall)),
    ));
}
