//! Operator experience (issue 7): the `auto-backup.sh`/`backup.sh` drop-in links, a backup run
//! the way cron runs it, syslog reports, the man page and completions, a closed stdout pipe.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::testenv::{outcome, require, Outcome, TestEnv};

const BIN: &str = env!("CARGO_BIN_EXE_statectl");

/// A link named `name` to the binary, in the env's temp dir.
fn link(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.dir.path().join("sbin");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if !path.exists() {
        std::os::unix::fs::symlink(BIN, &path).unwrap();
    }
    path
}

/// Runs `program` the way cron does: empty environment but PATH and the STATECTL_* variables
/// naming the fake host, no HOME, stdin from /dev/null, stdout and stderr captured (no TTY).
fn cron_run(env: &TestEnv, program: &Path, args: &[&str], extra: &[(&str, &Path)]) -> Outcome {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("STATECTL_ROOT", &env.root)
        .env("STATECTL_RUN_DIR", &env.run_dir)
        .current_dir("/")
        .args(args)
        .stdin(Stdio::null());
    for (key, value) in extra {
        cmd.env(key, value);
    }
    outcome(cmd.output().unwrap())
}

#[track_caller]
fn silent_success(out: &Outcome) {
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "", "stdout not empty");
    assert_eq!(out.stderr, "", "stderr not empty");
}

#[test]
fn cron_style_backup_works_and_is_silent() {
    let env = TestEnv::esxi();
    silent_success(&cron_run(&env, Path::new(BIN), &["backup"], &[]));
    assert!(env.state("bootbank").is_file());
    env.flagged("etc/hosts", "10.0.0.1 esx01\n");
    silent_success(&cron_run(&env, Path::new(BIN), &["-q", "backup"], &[]));
    let auto = link(&env, "auto-backup.sh");
    silent_success(&cron_run(&env, &auto, &[], &[]));
    let status = cron_run(&env, Path::new(BIN), &["status"], &[]);
    assert_eq!(status.code, 0, "{status:?}");
}

#[test]
fn auto_backup_link_runs_backup() {
    let env = TestEnv::esxi();
    let auto = link(&env, "auto-backup.sh");
    silent_success(&cron_run(&env, &auto, &[], &[]));
    let first = fs::read(env.state("bootbank")).unwrap();
    let report = cron_run(&env, &auto, &["--json"], &[]);
    assert_eq!(report.code, 0, "{report:?}");
    assert_eq!(report.json()["action"], "unchanged");
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), first);
}

#[test]
fn backup_sh_link_takes_esxi_arguments() {
    let env = TestEnv::esxi();
    let script = link(&env, "backup.sh");
    silent_success(&cron_run(&env, &script, &["0"], &[]));
    assert!(env.state("bootbank").is_file());
    assert!(!env.state("altbootbank").exists());
    // 1 = shutdown; DIR = that bank only (it has no archive yet, so it is written).
    let alt = env.bank("altbootbank");
    let out = cron_run(&env, &script, &["1", alt.to_str().unwrap(), "--json"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["action"], "written");
    assert_eq!(out.json()["banks"][0], alt.to_str().unwrap());
    let written = fs::read(env.state("altbootbank")).unwrap();
    // A shutdown backup with nothing changed writes nothing, like every run.
    let again = cron_run(&env, &script, &["1", alt.to_str().unwrap(), "--json"], &[]);
    assert_eq!(again.json()["action"], "unchanged", "{again:?}");
    assert_eq!(fs::read(env.state("altbootbank")).unwrap(), written);
}

#[test]
fn backup_sh_refuses_like_the_esxi_script() {
    let env = TestEnv::esxi();
    let script = link(&env, "backup.sh");
    let out = cron_run(&env, &script, &[], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let usage = format!("Usage: {} IsShutdown [PATH_NAME]\n", script.display());
    assert_eq!(out.stderr, usage);
    let out = cron_run(&env, &script, &["yes"], &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "Invalid parameter for is_shutdown: yes\n");
    assert!(!env.state("bootbank").exists());
}

/// A datagram socket standing in for /dev/log.
struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Syslog {
    fn bind(env: &TestEnv) -> Syslog {
        let path = env.dir.path().join("log.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        Syslog { socket, path }
    }

    /// The messages received so far (every send happened before the process exited).
    fn drain(&self) -> Vec<String> {
        let mut messages = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.socket.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        messages
    }

    fn run(&self, env: &TestEnv, args: &[&str]) -> (Outcome, Vec<String>) {
        let out = cron_run(
            env,
            Path::new(BIN),
            args,
            &[("STATECTL_SYSLOG_SOCKET", &self.path)],
        );
        (out, self.drain())
    }
}

#[test]
fn syslog_gets_one_message_per_archive_written_and_per_error() {
    let env = TestEnv::esxi();
    let log = Syslog::bind(&env);
    let (out, messages) = log.run(&env, &["backup"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
    let state = env.state("bootbank").display().to_string();
    assert!(messages[0].starts_with("<13>statectl["), "{}", messages[0]);
    assert!(
        messages[0].contains(&format!("wrote {state} (6 files")),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("sha256 "), "{}", messages[0]);

    let (_, messages) = log.run(&env, &["backup"]);
    assert_eq!(
        messages,
        Vec::<String>::new(),
        "an unchanged run logs nothing"
    );
    let (_, messages) = log.run(&env, &["status"]);
    assert!(messages.is_empty(), "{messages:?}");

    let missing = env.dir.path().join("no-bank");
    let (out, messages) = log.run(&env, &["backup", "--bank", missing.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("<11>statectl["), "{}", messages[0]);
    assert!(
        messages[0].contains(missing.to_str().unwrap()),
        "{}",
        messages[0]
    );

    let (out, messages) = log.run(&env, &["backup", "--bogus"]);
    assert_eq!(out.code, 2);
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[test]
#[ignore = "needs groff (.ci/run installs groff-base)"]
fn man_command_prints_the_committed_page_and_it_renders() {
    require("groff");
    let env = TestEnv::new();
    let out = env.run(&["man"]).ok();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/statectl.1");
    assert!(
        out.stdout == fs::read_to_string(&committed).unwrap(),
        "man/statectl.1 is stale: run `STATECTL_UPDATE_MAN=1 cargo test --lib man_page`"
    );
    let check = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&committed)
        .output()
        .unwrap();
    assert!(check.status.success());
    let warnings = String::from_utf8_lossy(&check.stderr);
    assert!(warnings.is_empty(), "groff warnings: {warnings}");
}

#[test]
fn completions_know_every_command() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]).ok();
        for command in ["backup", "status", "diff", "man", "completions"] {
            assert!(out.stdout.contains(command), "{shell}: no {command}");
        }
    }
    let script = env.dir.path().join("statectl.bash");
    fs::write(&script, env.run(&["completions", "bash"]).ok().stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(check.success(), "bash completion script does not parse");
    env.run(&["completions", "tcsh"]).code(2);
}

#[test]
fn a_closed_stdout_pipe_prints_no_error() {
    let env = TestEnv::esxi();
    for args in [&["status"][..], &["status", "--json"], &["diff"], &["man"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = env.command(args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr, "", "{args:?} wrote to stderr");
    }
}
