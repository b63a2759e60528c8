//! The VIB's init script (`scripts/esxi/statectl.init`, shipped as `etc/init.d/statectl`) run
//! under `busybox ash` against a fake ESXi root (`STATECTL_ROOT`): its `/sbin` backup scripts,
//! the root crontab and a crond whose pid is in `var/run/crond.pid` (a real process the test
//! starts; `STATECTL_CROND` starts the next one). For each `[esxi] wire` mode: `start` twice is
//! the same as once, `stop` puts every file back byte for byte (mode and mtime too). Needs
//! busybox (ignored otherwise).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use walkdir::WalkDir;

use crate::testenv::{outcome, require, Outcome};

const BINARY: &str = "/opt/statectl/bin/statectl";
const CRONTAB: &str = "var/spool/cron/crontabs/root";
const ESXI_CRONTAB: &str = "#min hour day mon dow command\n\
    1    1    *   *   *   /sbin/tmpwatch.py\n\
    1    *    *   *   *   /sbin/auto-backup.sh\n\
    0    *    *   *   *   /usr/lib/vmware/vmksummary/log-heartbeat.py\n";
/// Files a run changes that are not host files: crond's pid and the script's saved crontab.
const RUNTIME: [&str; 2] = ["var/run/crond.pid", "var/run/statectl-wire"];

struct Esxi {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Drop for Esxi {
    fn drop(&mut self) {
        if let Some(pid) = self.crond_pid() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Esxi {
    /// A fake ESXi root; `bin_backup`: whether `/bin/backup.sh` exists (ESXi 8), `wire`: the
    /// `[esxi] wire` line, if any.
    fn new(bin_backup: bool, wire: Option<&str>) -> Esxi {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut files = vec![
            ("sbin/auto-backup.sh", "#!/bin/sh\n# ESXi's hourly check\n"),
            ("sbin/backup.sh", "#!/bin/sh\n# ESXi's backup\n"),
            ("opt/statectl/bin/statectl", "#!/bin/sh\n"),
            (CRONTAB, ESXI_CRONTAB),
        ];
        if bin_backup {
            files.push(("bin/backup.sh", "#!/bin/sh\n# ESXi 8's backup\n"));
        }
        for (rel, text) in files {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            let mode = if rel == CRONTAB { 0o600 } else { 0o755 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            filetime::set_file_mtime(&path, filetime::FileTime::from_unix_time(1_600_000_000, 0))
                .unwrap();
        }
        if let Some(wire) = wire {
            fs::create_dir_all(root.join("etc")).unwrap();
            fs::write(root.join("etc/statectl.toml"), format!("[esxi]\n{wire}\n")).unwrap();
        }
        let esxi = Esxi { dir, root };
        fs::create_dir_all(esxi.root.join("var/run")).unwrap();
        esxi.start_crond();
        esxi
    }

    /// A stand-in crond: a sleeping process whose pid goes into `var/run/crond.pid`.
    fn crond_command(&self) -> String {
        let script = self.dir.path().join("crond");
        let text = format!(
            "#!/bin/sh\nsleep 600 </dev/null >/dev/null 2>&1 &\necho $! > '{}'\n\
             echo started >> '{}'\n",
            self.root.join("var/run/crond.pid").display(),
            self.dir.path().join("crond.log").display()
        );
        fs::write(&script, text).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        script.display().to_string()
    }

    fn start_crond(&self) {
        let ran = Command::new("sh")
            .arg(self.crond_command())
            .status()
            .unwrap();
        assert!(ran.success());
    }

    fn crond_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.root.join("var/run/crond.pid")).ok()?;
        text.trim().parse().ok()
    }

    fn crond_starts(&self) -> usize {
        let log = fs::read_to_string(self.dir.path().join("crond.log")).unwrap_or_default();
        log.lines().count()
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/esxi/statectl.init");
        outcome(
            Command::new("busybox")
                .arg("ash")
                .arg(script)
                .args(args)
                .env("STATECTL_ROOT", &self.root)
                .env("STATECTL_CROND", self.crond_command())
                .env_remove("STATECTL_CONFIG")
                .output()
                .unwrap(),
        )
    }

    /// Every entry under the root but the run-time ones: kind, mode, mtime, content or target.
    fn snapshot(&self) -> BTreeMap<String, (u32, i64, Vec<u8>)> {
        let mut all = BTreeMap::new();
        for entry in WalkDir::new(&self.root).min_depth(1) {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(&self.root).unwrap();
            let rel = rel.to_string_lossy().into_owned();
            if RUNTIME
                .iter()
                .any(|r| rel == *r || rel.starts_with(&format!("{r}/")))
            {
                continue;
            }
            let meta = entry.path().symlink_metadata().unwrap();
            let content = if meta.file_type().is_symlink() {
                fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_file() {
                fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            let mtime = if meta.is_dir() { 0 } else { meta.mtime() };
            all.insert(rel, (meta.mode(), mtime, content));
        }
        all
    }

    fn link(&self, rel: &str) -> Option<PathBuf> {
        fs::read_link(self.root.join(rel)).ok()
    }
}

fn alive(pid: i32) -> bool {
    // A killed child of ours may linger as a zombie until reaped: not alive for us.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn dropin_links_the_backup_scripts_once_and_stop_restores_them() {
    require("busybox");
    for bin_backup in [true, false] {
        let esxi = Esxi::new(bin_backup, None);
        let before = esxi.snapshot();
        let original = fs::read(esxi.root.join("sbin/backup.sh")).unwrap();
        esxi.run(&["status"]).code(3);
        esxi.run(&["start", "install"]).ok();
        for name in ["sbin/auto-backup.sh", "sbin/backup.sh"] {
            assert_eq!(esxi.link(name), Some(PathBuf::from(BINARY)), "{name}");
        }
        assert_eq!(esxi.link("bin/backup.sh").is_some(), bin_backup);
        assert!(!esxi.root.join("bin/backup.sh.orig").exists() || bin_backup);
        assert_eq!(
            fs::read(esxi.root.join("sbin/backup.sh.orig")).unwrap(),
            original
        );
        let once = esxi.snapshot();
        esxi.run(&["start"]).ok();
        assert_eq!(esxi.snapshot(), once, "start twice differs from once");
        esxi.run(&["status"]).ok();
        assert_eq!(esxi.crond_starts(), 1, "dropin restarted crond");
        esxi.run(&["stop", "remove"]).ok();
        assert_eq!(esxi.snapshot(), before, "stop left a difference");
        esxi.run(&["stop"]).ok();
        assert_eq!(esxi.snapshot(), before);
    }
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn cron_replaces_the_crontab_line_restarts_crond_and_stop_restores_it() {
    require("busybox");
    let esxi = Esxi::new(true, Some("wire = \"cron\"  # statectl's own line"));
    let before = esxi.snapshot();
    let first_crond = esxi.crond_pid().unwrap();
    esxi.run(&["start"]).ok();
    let crontab = fs::read_to_string(esxi.root.join(CRONTAB)).unwrap();
    assert!(
        crontab.ends_with("1 * * * * /opt/statectl/bin/statectl -q backup\n"),
        "{crontab}"
    );
    let esxi_line = crontab
        .lines()
        .find(|l| l.contains("auto-backup.sh"))
        .unwrap();
    assert!(esxi_line.starts_with('#'), "{crontab}");
    assert!(crontab.contains("/sbin/tmpwatch.py\n"), "{crontab}");
    assert_eq!(
        esxi.link("sbin/backup.sh"),
        None,
        "cron mode linked the scripts"
    );
    assert!(!alive(first_crond), "the old crond still runs");
    let second_crond = esxi.crond_pid().unwrap();
    assert!(second_crond != first_crond && alive(second_crond));
    let once = esxi.snapshot();
    esxi.run(&["start"]).ok();
    assert_eq!(esxi.snapshot(), once, "start twice differs from once");
    assert_eq!(esxi.crond_starts(), 2, "a second start restarted crond");
    esxi.run(&["status"]).ok();
    esxi.run(&["stop"]).ok();
    assert_eq!(esxi.snapshot(), before, "stop left a difference");
    assert_eq!(esxi.crond_starts(), 3, "stop did not restart crond");

    // The saved copy lives in RAM: without it, stop undoes the edit line by line.
    esxi.run(&["start"]).ok();
    fs::remove_dir_all(esxi.root.join("var/run/statectl-wire")).unwrap();
    esxi.run(&["remove"]).ok();
    let back = esxi.snapshot();
    assert_eq!(
        back[CRONTAB].2, before[CRONTAB].2,
        "the crontab's bytes differ"
    );
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn none_changes_nothing_and_a_mode_change_unwires_the_other() {
    require("busybox");
    let esxi = Esxi::new(false, Some("wire = \"none\""));
    let before = esxi.snapshot();
    esxi.run(&["start"]).ok();
    assert_eq!(esxi.snapshot(), before);
    assert_eq!(esxi.crond_starts(), 1);
    esxi.run(&["status"]).ok();

    // Wired as dropin, then switched to cron: start moves from one to the other.
    fs::write(
        esxi.root.join("etc/statectl.toml"),
        "[esxi]\nwire = \"dropin\"\n",
    )
    .unwrap();
    esxi.run(&["start"]).ok();
    fs::write(
        esxi.root.join("etc/statectl.toml"),
        "[esxi]\nwire = \"cron\"\n",
    )
    .unwrap();
    esxi.run(&["start"]).ok();
    assert_eq!(esxi.link("sbin/backup.sh"), None);
    esxi.run(&["status"]).ok();
    esxi.run(&["stop"]).ok();
    let mut after = esxi.snapshot();
    after.remove("etc/statectl.toml");
    let mut expected = before.clone();
    expected.remove("etc/statectl.toml");
    assert_eq!(after, expected);
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn a_bad_wire_value_or_a_missing_binary_is_refused_and_changes_nothing() {
    require("busybox");
    let esxi = Esxi::new(false, Some("wire = \"rc.local\""));
    let before = esxi.snapshot();
    let out = esxi.run(&["start"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("rc.local") && out.stderr.contains("statectl.toml"),
        "{out:?}"
    );
    assert_eq!(esxi.snapshot(), before);

    let esxi = Esxi::new(false, None);
    fs::remove_file(esxi.root.join("opt/statectl/bin/statectl")).unwrap();
    let before = esxi.snapshot();
    let out = esxi.run(&["start"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(BINARY), "{out:?}");
    assert_eq!(esxi.snapshot(), before);
    assert_eq!(esxi.run(&["bogus"]).code, 2);
}
