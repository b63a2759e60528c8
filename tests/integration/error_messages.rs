//! The error audit (issue 7): every failure path gives exactly one stderr line
//! `statectl: error: ...` naming the path, the documented exit code, no panic or backtrace;
//! `-v` adds the cause chain.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::testenv::{outcome, Outcome, TestEnv};

/// One row of the table: how to break the host, the command, the exit code, and a text the
/// error line must name (a path, or the flag).
struct Case {
    name: &'static str,
    setup: fn(&TestEnv) -> Vec<String>,
    code: i32,
    names: fn(&TestEnv) -> String,
}

fn s(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn p(path: PathBuf) -> String {
    path.display().to_string()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "missing root",
            setup: |env| s(&["--root", &p(env.dir.path().join("no-root")), "backup"]),
            code: 1,
            names: |env| p(env.dir.path().join("no-root")),
        },
        Case {
            name: "missing banks",
            setup: |env| {
                fs::remove_dir_all(env.bank("bootbank")).unwrap();
                fs::remove_dir_all(env.bank("altbootbank")).unwrap();
                s(&["backup"])
            },
            code: 1,
            names: |env| p(env.bank("bootbank")),
        },
        Case {
            name: "--bank that does not exist",
            setup: |env| s(&["backup", "--bank", &p(env.dir.path().join("no-bank"))]),
            code: 1,
            names: |env| p(env.dir.path().join("no-bank")),
        },
        Case {
            // A directory where the config file is expected fails even for root.
            name: "unreadable config file",
            setup: |env| {
                fs::create_dir(env.dir.path().join("conf.toml")).unwrap();
                s(&["status", "--config", &p(env.dir.path().join("conf.toml"))])
            },
            code: 1,
            names: |env| p(env.dir.path().join("conf.toml")),
        },
        Case {
            name: "bad config TOML",
            setup: |env| {
                fs::write(env.path("etc/statectl.toml"), "scan = [\"etc\"\n").unwrap();
                s(&["backup"])
            },
            code: 1,
            names: |env| p(env.path("etc/statectl.toml")),
        },
        Case {
            name: "garbage boot.cfg in both banks",
            setup: |env| {
                fs::write(
                    env.bank("bootbank").join("boot.cfg"),
                    b"\x00\xff\xfe garbage",
                )
                .unwrap();
                fs::write(env.bank("altbootbank").join("boot.cfg"), "no equals sign\n").unwrap();
                s(&["backup"])
            },
            code: 1,
            names: |env| p(env.bank("bootbank")),
        },
        Case {
            name: "archive is a directory",
            setup: |env| {
                fs::create_dir(env.state("bootbank")).unwrap();
                s(&["backup"])
            },
            code: 1,
            names: |env| p(env.bank("bootbank")),
        },
        Case {
            name: "bad flag",
            setup: |_| s(&["backup", "--bogus"]),
            code: 2,
            names: |_| "--bogus".to_string(),
        },
        Case {
            name: "bad option value",
            setup: |_| s(&["backup", "--wait", "soon"]),
            code: 2,
            names: |_| "--wait".to_string(),
        },
    ]
}

/// Runs the binary on the env's host through `STATECTL_ROOT`, so `--root` may be passed.
fn run(env: &TestEnv, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_statectl"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STATECTL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("STATECTL_ROOT", &env.root)
        .env("STATECTL_RUN_DIR", &env.run_dir)
        .args(args)
        .stdin(Stdio::null());
    outcome(cmd.output().unwrap())
}

#[track_caller]
fn assert_one_error_line(case: &str, out: &Outcome, code: i32, names: &str) {
    assert_eq!(out.code, code, "{case}: exit code; stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: stderr is not one line:\n{}",
        out.stderr
    );
    assert!(
        lines[0].starts_with("statectl: error: "),
        "{case}: {}",
        lines[0]
    );
    assert!(
        lines[0].contains(names),
        "{case}: `{names}` not named: {}",
        lines[0]
    );
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(bad), "{case}: {}", out.stderr);
    }
}

#[test]
fn every_error_path_is_one_line_with_its_exit_code() {
    for case in cases() {
        let env = TestEnv::esxi();
        let args = (case.setup)(&env);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&env, &args);
        assert_one_error_line(case.name, &out, case.code, &(case.names)(&env));
    }
}

#[test]
fn a_busy_lock_is_one_line_and_exit_4() {
    let env = TestEnv::esxi();
    let bank = env.bank("bootbank");
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&env.run_dir)
        .unwrap();
    let _held =
        statectl::lock::lock_banks(&env.run_dir, &[bank.as_path()], Duration::ZERO).unwrap();
    let out = env.run(&["backup", "--wait", "0"]);
    assert_one_error_line("lock busy", &out, 4, &p(bank.canonicalize().unwrap()));
    assert!(out
        .stderr
        .trim_end()
        .ends_with("try again later or raise --wait"));
}

#[test]
fn the_hint_comes_last_and_verbose_adds_the_cause_chain() {
    let env = TestEnv::esxi();
    let missing = p(env.dir.path().join("no-root"));
    let out = run(&env, &["--root", &missing, "status"]).code(1);
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "statectl: error: cannot open root `{missing}`: No such file or directory; \
             pass --root DIR"
        )
    );
    let out = run(&env, &["-v", "--root", &missing, "status"]).code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines[0].starts_with("statectl: error: "), "{}", out.stderr);
    assert!(lines.len() >= 3, "no cause chain: {}", out.stderr);
    assert!(
        lines.iter().any(|l| l.contains("os error 2")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bare_statectl_prints_help_and_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_statectl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = outcome(output);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Usage: statectl"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}
