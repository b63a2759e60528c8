//! The slow group: the kill and fault sweeps and the races, in one module so that
//! `cargo test --test integration sweep::` runs them alone and
//! `cargo test --test integration -- --skip sweep::` runs everything else (CI runs both).
//!
//! Here too, the fault-injection harness they share (with the FAT and read-count tests): a scene
//! (a host whose next backup replaces an old archive in a staged-upgrade layout, so both banks
//! are written), bank snapshots, and one `statectl backup` run under `strace -e inject=...`.
//!
//! The sweep is SQLite-style: fail syscall invocation N (per syscall, per process, as strace
//! counts), check the invariants, reset, N+1, until a run reaches no injection point.

#![allow(dead_code)]

mod bootcfg_faults;
mod copies;
pub(crate) mod crash;
mod durability;
mod fat;
mod races;
mod writers;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::testenv::{outcome, Outcome, TestEnv};

/// Every syscall through which a backup can tear something on disk.
pub const SYSCALLS: &[&str] = &[
    "openat",
    "write",
    "fsync",
    "fdatasync",
    "close",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
];

/// Bank files by "bank/name".
pub type Snapshot = BTreeMap<String, Vec<u8>>;

pub struct Scene {
    pub env: TestEnv,
    pub banks: Vec<PathBuf>,
    pub old: Snapshot,
    pub new: Snapshot,
}

/// A host with about 20 flagged files, an archive and a stale temp file in the bootbank, an
/// upgrade staged in the altbootbank (no archive there yet), and one pending change. `banks` overrides where the
/// two banks live (e.g. on a FAT image); they must exist.
pub fn scene(banks: Option<(&Path, &Path)>) -> Scene {
    let env = TestEnv::esxi();
    for i in 0..14 {
        let body = format!("<config><item id=\"{i}\"/></config>\n").repeat(i + 1);
        env.flagged(&format!("etc/vmware/hostd/conf{i:02}.xml"), &body);
    }
    let (boot, alt) = match banks {
        Some((boot, alt)) => (boot.to_path_buf(), alt.to_path_buf()),
        None => (env.bank("bootbank"), env.bank("altbootbank")),
    };
    write_boot_cfg(&boot, 3, 0, "7.0.3-0.20.19193900");
    write_boot_cfg(&alt, 2, 0, "7.0.3-0.20.19193900");
    let bank_args = bank_args(&boot, &alt);
    let mut args = bank_args.clone();
    args.push("backup".into());
    run(&env, &args).ok();
    write_boot_cfg(&alt, 4, 1, "8.0.0-0.0.20513097");
    env.flagged("etc/hosts", "127.0.0.1 localhost\n10.0.0.5 esx01\n");
    // A temp file an earlier killed run left: the sweep covers its removal too.
    fs::write(boot.join(".statectl-killed.tmp"), b"partial").unwrap();
    let banks = vec![boot, alt];
    let old = snapshot(&banks);
    run(&env, &args).ok();
    let new = snapshot(&banks);
    assert!(new.keys().filter(|k| k.ends_with("state.tgz")).count() == 2);
    assert!(!old.contains_key("altbootbank/state.tgz"));
    reset(&env, &banks, &old);
    Scene {
        env,
        banks,
        old,
        new,
    }
}

fn bank_args(boot: &Path, alt: &Path) -> Vec<String> {
    vec![
        "--bootbank".into(),
        boot.display().to_string(),
        "--altbootbank".into(),
        alt.display().to_string(),
    ]
}

pub fn write_boot_cfg(bank: &Path, updated: u64, bootstate: u64, build: &str) {
    let text = format!(
        "bootstate={bootstate}\ntitle=Loading VMware ESXi\ntimeout=5\nprefix=\nkernel=/b.b00\n\
         kernelopt=autoPartition=FALSE\nmodules=/jumpstrt.gz --- /useropts.gz --- /s.v00\n\
         build={build}\nupdated={updated}\n"
    );
    // Replaced, not truncated: fusefat loses a file's clusters when O_TRUNC meets a file
    // with data, and a later delete then frees cluster 0 and corrupts the FAT (statectl itself
    // never truncates: it writes new temp files and renames them).
    let path = bank.join("boot.cfg");
    let _ = fs::remove_file(&path);
    fs::write(path, text).unwrap();
}

fn run(env: &TestEnv, args: &[String]) -> Outcome {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args)
}

impl Scene {
    /// `statectl backup` as the scene runs it.
    pub fn backup(&self) -> Outcome {
        let mut args = bank_args(&self.banks[0], &self.banks[1]);
        args.push("backup".into());
        run(&self.env, &args)
    }

    /// `backup` under strace with `inject` (e.g. `write:signal=SIGKILL:when=3`), tracing
    /// `trace`; returns the outcome and the strace log.
    pub fn backup_injected(&self, trace: &str, inject: &str) -> (Outcome, String) {
        let mut args = bank_args(&self.banks[0], &self.banks[1]);
        args.push("backup".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_injected(&self.env, &args, trace, inject)
    }

    pub fn reset(&self) {
        reset(&self.env, &self.banks, &self.old);
    }

    pub fn snapshot(&self) -> Snapshot {
        snapshot(&self.banks)
    }

    /// The invariants after any run, killed or failed: each bank's archive and boot.cfg are
    /// the old or the new bytes, and a boot.cfg listing state.tgz has it beside it. Returns
    /// the temp files left behind.
    #[track_caller]
    pub fn check_consistent(&self, what: &str) -> Vec<String> {
        let now = self.snapshot();
        let mut temps = Vec::new();
        for (key, bytes) in &now {
            let name = key.rsplit('/').next().unwrap_or_default();
            if name.starts_with(".statectl-") {
                temps.push(key.clone());
                continue;
            }
            let old_or_new = self.old.get(key) == Some(bytes) || self.new.get(key) == Some(bytes);
            assert!(
                old_or_new,
                "{what}: `{key}` is neither the old nor the new bytes"
            );
        }
        for bank in ["bootbank", "altbootbank"] {
            let cfg = now.get(&format!("{bank}/boot.cfg"));
            let cfg = String::from_utf8_lossy(cfg.map(Vec::as_slice).unwrap_or_default());
            if cfg.contains("state.tgz") {
                assert!(
                    now.contains_key(&format!("{bank}/state.tgz")),
                    "{what}: {bank}/boot.cfg names a missing state.tgz"
                );
            }
        }
        temps
    }

    /// The next normal run succeeds and leaves exactly the new banks.
    #[track_caller]
    pub fn check_recovers(&self, what: &str) {
        let out = self.backup();
        assert_eq!(out.code, 0, "{what}: the next run failed: {}", out.stderr);
        let now = self.snapshot();
        let differ: Vec<&String> = now
            .keys()
            .chain(self.new.keys())
            .filter(|k| now.get(*k) != self.new.get(*k))
            .collect();
        assert!(
            differ.is_empty(),
            "{what}: after the next run these differ from a clean backup's: {differ:?}"
        );
    }
}

fn snapshot(banks: &[PathBuf]) -> Snapshot {
    let mut snap = Snapshot::new();
    for (bank, label) in banks.iter().zip(["bootbank", "altbootbank"]) {
        for entry in fs::read_dir(bank).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            snap.insert(format!("{label}/{name}"), fs::read(entry.path()).unwrap());
        }
    }
    snap
}

fn reset(env: &TestEnv, banks: &[PathBuf], old: &Snapshot) {
    for bank in banks {
        for entry in fs::read_dir(bank).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }
    for (key, bytes) in old {
        let (label, name) = key.split_once('/').unwrap();
        let bank = if label == "bootbank" {
            &banks[0]
        } else {
            &banks[1]
        };
        fs::write(bank.join(name), bytes).unwrap();
    }
    let _ = fs::remove_dir_all(&env.run_dir);
}

/// Any statectl command of `env` under strace with `inject` (e.g.
/// `write:signal=SIGKILL:when=3`), tracing `trace`; returns the outcome and the strace log.
pub fn run_injected(env: &TestEnv, args: &[&str], trace: &str, inject: &str) -> (Outcome, String) {
    traced(env, args, trace, Some(inject))
}

/// `statectl ARGS` of `env` under `strace -f`, tracing `trace` and injecting `inject` when
/// given; returns the outcome and the strace log.
pub fn traced(
    env: &TestEnv,
    args: &[&str],
    trace: &str,
    inject: Option<&str>,
) -> (Outcome, String) {
    traced_command(env, env.command(args), trace, inject)
}

/// As [`traced`], for a command prepared by the caller (extra environment, say).
pub fn traced_command(
    env: &TestEnv,
    inner: Command,
    trace: &str,
    inject: Option<&str>,
) -> (Outcome, String) {
    let log = env.dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.arg("-f")
        .arg("-o")
        .arg(&log)
        .arg("-e")
        .arg(format!("trace={trace}"));
    if let Some(inject) = inject {
        cmd.arg("-e").arg(format!("inject={inject}"));
    }
    cmd.arg("--")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = outcome(cmd.output().expect("run strace"));
    (out, fs::read_to_string(&log).unwrap_or_default())
}

/// Whether strace injected anything (the run reached invocation N).
pub fn injected(log: &str) -> bool {
    log.contains("(INJECTED)")
}
