//! `TestEnv`: a fake host in a temp dir (root, two banks, run dir) and a runner for the binary.
//!
//! Sticky bits are set at run time (git does not store them); file mtimes default to a fixed
//! past time so runs are deterministic and outside the cache's racy window.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use filetime::FileTime;
use tempfile::TempDir;

/// Default mtime of files the harness writes (2023-11-14).
pub const MTIME: i64 = 1_700_000_000;

pub struct TestEnv {
    pub dir: TempDir,
    pub root: PathBuf,
    pub run_dir: PathBuf,
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Outcome {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Outcome {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl TestEnv {
    /// A host with an empty `etc`, a bootbank (updated=3) and an altbootbank (updated=2).
    pub fn new() -> TestEnv {
        TestEnv::in_dir(tempfile::tempdir().expect("temp dir"))
    }

    /// As [`TestEnv::new`], laid out in `dir` (a RAM filesystem's, say).
    pub fn in_dir(dir: TempDir) -> TestEnv {
        let root = dir.path().join("root");
        let run_dir = dir.path().join("run");
        fs::create_dir_all(root.join("etc")).unwrap();
        let env = TestEnv { dir, root, run_dir };
        env.boot_cfg("bootbank", 3, 0, "7.0.3-0.20.19193900");
        env.boot_cfg("altbootbank", 2, 0, "7.0.3-0.20.19193900");
        env
    }

    /// A typical ESXi host: a handful of flagged files, an unflagged one, a branch and a link.
    pub fn esxi() -> TestEnv {
        let env = TestEnv::new();
        env.flagged("etc/passwd", "root:x:0:0:root:/:/bin/sh\n");
        env.flagged("etc/shadow", "root:$6$salt$hash:19000:0:99999:7:::\n");
        env.file("etc/shadow", None, 0o1400);
        env.flagged("etc/hosts", "127.0.0.1 localhost\n");
        env.flagged(
            "etc/vmware/esx.conf",
            "/adv/Misc/HostName = \"esx01\"\n/system/uuid = \"5f1c-01\"\n",
        );
        env.flagged("etc/vmware/ssl/rui.key", "-----BEGIN PRIVATE KEY-----\n");
        env.file("etc/vmware/ssl/rui.key", None, 0o1600);
        env.file("etc/motd", Some("not persisted\n"), 0o644);
        env.file("etc/ntp.conf", Some("server pool.ntp.org\n"), 0o644);
        env.file("etc/.#ntp.conf", Some("server old\n"), 0o644);
        std::os::unix::fs::symlink("hosts", env.root.join("etc/hosts.link")).unwrap();
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn bank(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn state(&self, bank: &str) -> PathBuf {
        self.bank(bank).join("state.tgz")
    }

    /// Writes a modified image file as ESXi leaves it: the file (mode 1644) and, when missing,
    /// its `.#` branch (the image's original), so the selection persists it.
    pub fn flagged(&self, rel: &str, content: &str) -> &Self {
        self.file(rel, Some(content), 0o1644);
        let branch = branch_of(rel);
        if !self.root.join(&branch).exists() {
            self.file(&branch, Some("image default\n"), 0o644);
        }
        self
    }

    /// Writes an unmodified image file: T-flagged (mode 1644), no branch; not persisted
    /// unless the config says `select = "sticky"`.
    pub fn unmodified(&self, rel: &str, content: &str) -> &Self {
        self.file(rel, Some(content), 0o1644)
    }

    /// Writes (or with `None` keeps) a file's content, then sets its mode and the fixed mtime.
    pub fn file(&self, rel: &str, content: Option<&str>, mode: u32) -> &Self {
        let path = self.root.join(rel);
        if let Some(content) = content {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        filetime::set_file_mtime(&path, FileTime::from_unix_time(MTIME, 0)).unwrap();
        self
    }

    /// Writes a bank's boot.cfg.
    pub fn boot_cfg(&self, bank: &str, updated: u64, bootstate: u64, build: &str) {
        let dir = self.bank(bank);
        fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "bootstate={bootstate}\ntitle=Loading VMware ESXi\ntimeout=5\nprefix=\nkernel=/b.b00\n\
             kernelopt=autoPartition=FALSE\nmodules=/jumpstrt.gz --- /useropts.gz --- /s.v00\n\
             build={build}\nupdated={updated}\n"
        );
        fs::write(dir.join("boot.cfg"), text).unwrap();
    }

    /// A command for the binary with this host's root and run dir, and a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_statectl"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("STATECTL_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("STATECTL_RUN_DIR", &self.run_dir)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Removes the run directory's pending-install markers, as a reboot clears the RAM disk;
    /// returns how many there were.
    pub fn reboot(&self) -> usize {
        let mut removed = 0;
        for entry in fs::read_dir(&self.run_dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("pending-install-") {
                fs::remove_file(&path).unwrap();
                removed += 1;
            }
        }
        removed
    }

    /// Runs the binary and collects its outcome.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let output = self.command(args).output().expect("run statectl");
        outcome(output)
    }

    /// Runs the binary with a datagram socket standing in for /dev/log; returns its outcome
    /// and the syslog messages it sent.
    pub fn run_logged(&self, args: &[&str]) -> (Outcome, Vec<String>) {
        let path = self.dir.path().join("log.sock");
        let _ = fs::remove_file(&path);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut command = self.command(args);
        let out = outcome(
            command
                .env("STATECTL_SYSLOG_SOCKET", &path)
                .output()
                .unwrap(),
        );
        let mut messages = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        (out, messages)
    }

    /// Puts a `vmware` stub answering `-l` with `level` (as ESXi's `vmware -l`) into this
    /// host's temp dir; returns a PATH that finds it first.
    pub fn stub_vmware(&self, level: &str) -> String {
        let bin = self.dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let script = format!("#!/bin/sh\n[ \"$1\" = -l ] && echo '{level}' && exit 0\nexit 1\n");
        fs::write(bin.join("vmware"), script).unwrap();
        fs::set_permissions(bin.join("vmware"), fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Runs the binary with `path` as PATH.
    pub fn run_with_path(&self, path: &str, args: &[&str]) -> Outcome {
        outcome(self.command(args).env("PATH", path).output().unwrap())
    }

    /// The decompressed `useropts.gz` of a bank.
    pub fn useropts(&self, bank: &str) -> String {
        let file = fs::File::open(self.bank(bank).join("useropts.gz")).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).unwrap();
        text
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.root.join(rel)).unwrap()
    }
}

pub fn outcome(output: Output) -> Outcome {
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// True when `tool` is here: `root` is the effective uid 0, a name starting with `/` is a path
/// that exists (`/dev/fuse`, `/usr/bin/time`), anything else is a command on `PATH`.
pub fn installed(tool: &str) -> bool {
    if tool == "root" {
        // SAFETY: geteuid has no preconditions.
        return unsafe { libc::geteuid() } == 0;
    }
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fails the running test unless `tool` is here (see [`installed`]). A test that needs a tool
/// or privilege is `#[ignore = "needs <tool> (.ci/run installs it)"]` and calls this first: a
/// plain `cargo test` reports it as ignored, and `bash scripts/test.sh` (`--include-ignored`)
/// runs it, where a missing tool is a failure, never a silent pass.
#[track_caller]
pub fn require(tool: &str) {
    assert!(
        installed(tool),
        "this test needs `{tool}`, which is missing here: .ci/run installs the tools and runs \
         the suite as root"
    );
}

/// Runs the outside reader `tests/helpers/<script>` with python3 on `args` and returns its
/// stdout; fails the test when python3 or the reader's package is missing (the script exits 77
/// naming it) or when the reader fails.
#[track_caller]
pub fn python_oracle(script: &str, args: &[&Path]) -> Vec<u8> {
    require("python3");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(script);
    let run = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert_ne!(
        run.status.code(),
        Some(77),
        "this test needs {} (.ci/run installs it)",
        String::from_utf8_lossy(&run.stderr).trim()
    );
    assert!(
        run.status.success(),
        "{script} failed on {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    run.stdout
}

/// Runs a shell command in `dir`, asserting success.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `.#` branch path of a root-relative path (`etc/hosts` -> `etc/.#hosts`).
pub fn branch_of(rel: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.#{name}"),
        None => format!(".#{rel}"),
    }
}

/// `path` relative to `dir`, as a string.
pub fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// (path, mode, uid, gid, mtime, content) of every regular file under `dir`, sorted.
pub fn tree(dir: &Path) -> Vec<(String, u32, u32, u32, i64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let meta = e.metadata().unwrap();
            (
                relative(dir, e.path()),
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                meta.mtime(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `bytes` as one gzip member (fast level: tests build many archives).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A ustar archive of regular files `(name, content, mode)`, owned by 0:0, mtime [`MTIME`].
pub fn tar_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data, mode) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(MTIME as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The files [`TestEnv::esxi`] flags: what a backup of it selects.
pub const ESXI_SELECTED: [&str; 6] = [
    "etc/hosts",
    "etc/ntp.conf",
    "etc/passwd",
    "etc/shadow",
    "etc/vmware/esx.conf",
    "etc/vmware/ssl/rui.key",
];
