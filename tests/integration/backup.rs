//! `backup`, `status` and `diff`: selection, change detection, atomic writing, bank targeting,
//! locking (issue 2's acceptance list).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::testenv::{installed, require, sh, tree, TestEnv, ESXI_SELECTED, MTIME};

fn extract_with(tool: &str, env: &TestEnv, bank: &str) -> std::path::PathBuf {
    let out = env.dir.path().join(format!("x-{}", tool.replace(' ', "-")));
    fs::create_dir_all(&out).unwrap();
    let state = env.state(bank);
    sh(
        &out,
        &format!("{tool} -xzf '{}' && {tool} -xzf local.tgz", state.display()),
    );
    fs::remove_file(out.join("local.tgz")).unwrap();
    let _ = fs::remove_file(out.join("statectl.json"));
    out
}

#[test]
#[ignore = "needs root and busybox (.ci/run installs it and runs the suite as root)"]
fn first_backup_is_read_by_gnu_and_busybox_tar_with_exact_metadata() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    require("root");
    require("busybox");
    let tools = ["tar", "busybox tar"];
    let expected: Vec<_> = tree(&env.root.join("etc"))
        .into_iter()
        .filter(|f| ESXI_SELECTED.contains(&format!("etc/{}", f.0).as_str()))
        .map(|(p, mode, uid, gid, mtime, data)| (format!("etc/{p}"), mode, uid, gid, mtime, data))
        .collect();
    assert_eq!(expected.len(), ESXI_SELECTED.len());
    for tool in tools {
        let out = extract_with(tool, &env, "bootbank");
        assert_eq!(tree(&out), expected, "{tool} sees other files or metadata");
        let modes: Vec<u32> = tree(&out).iter().map(|f| f.1).collect();
        assert!(modes.contains(&0o1400), "sticky bit lost under {tool}");
    }
}

#[test]
fn no_change_backup_writes_nothing_and_keeps_the_archive_inode() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let before = fs::metadata(env.state("bootbank")).unwrap();
    let report = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(report["action"], "unchanged");
    assert_eq!(report["files"], 6);
    let after = fs::metadata(env.state("bootbank")).unwrap();
    assert_eq!(
        (
            before.ino(),
            before.size(),
            before.mtime(),
            before.mtime_nsec()
        ),
        (after.ino(), after.size(), after.mtime(), after.mtime_nsec())
    );
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn each_kind_of_change_is_listed_then_saved() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.run(&["status"]).ok();
    type Change = fn(&TestEnv);
    let cases: [(&str, &str, Change); 5] = [
        ("modified", "etc/hosts", |e| {
            e.flagged("etc/hosts", "127.0.0.1 localhost esx01\n");
        }),
        ("modified", "etc/passwd", |e| {
            e.file("etc/passwd", None, 0o1600);
        }),
        ("added", "etc/vmware/new.xml", |e| {
            e.flagged("etc/vmware/new.xml", "<x/>\n");
        }),
        ("removed", "etc/vmware/new.xml", |e| {
            fs::remove_file(e.path("etc/vmware/new.xml")).unwrap();
        }),
        ("added", "etc/motd", |e| {
            e.file("etc/.#motd", Some("older motd\n"), 0o644);
        }),
    ];
    for (kind, path, change) in cases {
        change(&env);
        let status = env.run(&["status", "--json"]).code(3).json();
        assert_eq!(
            status[kind],
            serde_json::json!([path]),
            "{kind} {path}: {status}"
        );
        let report = env.run(&["backup", "--json"]).ok().json();
        assert_eq!(report["action"], "written");
        assert_eq!(report[kind], serde_json::json!([path]));
        env.run(&["status"]).ok();
    }
    let listed = env.run(&["status", "--json"]).ok().json();
    assert!(listed["branched"]
        .as_array()
        .unwrap()
        .contains(&"etc/motd".into()));
}

#[test]
fn content_change_with_same_size_and_mtime_is_detected() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.run(&["status"]).ok(); // cache now vouches for every file
    env.flagged("etc/hosts", "127.0.0.2 localhost\n"); // same size, same mtime: ctime differs
    let status = env.run(&["status", "--json"]).code(3).json();
    assert_eq!(status["modified"], serde_json::json!(["etc/hosts"]));
}

#[test]
fn identical_hosts_give_identical_bytes_and_force_keeps_them() {
    let (a, b) = (TestEnv::esxi(), TestEnv::esxi());
    a.run(&["backup"]).ok();
    b.run(&["backup"]).ok();
    let bytes = fs::read(a.state("bootbank")).unwrap();
    assert_eq!(bytes, fs::read(b.state("bootbank")).unwrap());
    let report = a.run(&["backup", "--force", "--json"]).ok().json();
    assert_eq!(report["action"], "written");
    assert_eq!(bytes, fs::read(a.state("bootbank")).unwrap());
}

#[test]
fn a_staged_upgrade_gets_the_archive_in_both_banks() {
    let env = TestEnv::esxi();
    env.boot_cfg("altbootbank", 4, 1, "8.0.1-0.0.21495797");
    let report = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(report["banks"].as_array().unwrap().len(), 2);
    assert_eq!(report["archive"], env.state("bootbank").to_str().unwrap());
    // Each manifest records its own bank's build (tests/integration/loader_model.rs reads them).
    let alt = fs::read(env.state("altbootbank")).unwrap();
    assert_ne!(alt, fs::read(env.state("bootbank")).unwrap());
    for bank in ["bootbank", "altbootbank"] {
        let cfg = fs::read_to_string(env.bank(bank).join("boot.cfg")).unwrap();
        assert!(
            cfg.contains("modules=/jumpstrt.gz --- /useropts.gz --- /s.v00 --- state.tgz\n"),
            "{cfg}"
        );
    }
}

#[test]
fn bank_option_writes_only_that_directory() {
    let env = TestEnv::esxi();
    let target = env.dir.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    env.run(&["backup", "--bank", target.to_str().unwrap()])
        .ok();
    assert!(target.join("state.tgz").exists());
    assert!(!env.state("bootbank").exists());
}

#[test]
fn archive_and_temp_files_are_private() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let mode = fs::metadata(env.state("bootbank")).unwrap().mode();
    assert_eq!(mode & 0o077, 0, "state.tgz mode {mode:o}");
}

#[test]
fn a_missing_required_file_refuses_and_keeps_the_old_archive() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let old = fs::read(env.state("bootbank")).unwrap();
    fs::write(
        env.path("etc/statectl.toml"),
        "required = [\"etc/vmware/ssl/rui.key\"]\n",
    )
    .unwrap();
    fs::write(env.path("etc/vmware/ssl/rui.key"), "").unwrap();
    let out = env.run(&["backup"]).code(1);
    assert!(
        out.stderr.starts_with("statectl: error: required file"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("rui.key"));
    assert_eq!(out.stderr.lines().count(), 1);
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), old);
}

#[test]
fn stale_temp_files_are_removed_by_the_next_run() {
    let env = TestEnv::esxi();
    let stale = env.bank("bootbank").join(".statectl-killed.tmp");
    fs::write(&stale, "half an archive").unwrap();
    env.run(&["backup"]).ok();
    assert!(!stale.exists());
}

#[test]
fn an_unreadable_archive_is_replaced_with_a_warning() {
    let env = TestEnv::esxi();
    fs::write(env.state("bootbank"), "not gzip at all").unwrap();
    let out = env.run(&["backup", "--json"]).ok();
    assert!(out.stderr.contains("cannot be read"), "{}", out.stderr);
    assert_eq!(out.json()["added"].as_array().unwrap().len(), 6);
    env.run(&["status"]).ok();
}

#[test]
fn an_archive_made_by_hand_with_tar_compares_by_content() {
    let env = TestEnv::esxi();
    let tool = if installed("busybox") {
        "busybox tar"
    } else {
        "tar"
    };
    let list = ESXI_SELECTED.join(" ");
    sh(&env.root, &format!("{tool} -czf /tmp/statectl-local-$$.tgz {list} && mkdir -p x && mv /tmp/statectl-local-$$.tgz x/local.tgz && cd x && {tool} -czf ../bootbank/state.tgz local.tgz"));
    env.run(&["status"]).ok();
    env.flagged("etc/hosts", "changed\n");
    let status = env.run(&["status", "--json"]).code(3).json();
    assert_eq!(status["modified"], serde_json::json!(["etc/hosts"]));
}

#[test]
fn a_busy_bank_lock_gives_exit_4() {
    let env = TestEnv::esxi();
    fs::create_dir_all(&env.run_dir).unwrap();
    let bank = env.bank("bootbank");
    let _held =
        statectl::lock::lock_banks(&env.run_dir, &[bank.as_path()], Duration::ZERO).unwrap();
    let out = env.run(&["backup", "--wait", "1"]).code(4);
    assert!(
        out.stderr.contains("locked by another statectl run"),
        "{}",
        out.stderr
    );
}

#[test]
fn concurrent_backups_exit_0_or_4_and_leave_one_valid_archive() {
    let env = TestEnv::esxi();
    for i in 0..50 {
        env.flagged(&format!("etc/vmware/f{i}.xml"), &"x".repeat(1000 + i));
    }
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.command(&["backup", "--force", "--wait", "0"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        let code = child.wait().unwrap().code().unwrap();
        assert!(code == 0 || code == 4, "exit {code}");
    }
    let out = extract_with("tar", &env, "bootbank");
    assert_eq!(tree(&out).len(), 56);
    let leftovers: Vec<_> = fs::read_dir(env.bank("bootbank"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn diff_shows_content_and_mode_changes() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.run(&["diff"]).ok();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n10.0.0.1 vcenter\n");
    env.file("etc/passwd", None, 0o1600);
    let out = env.run(&["diff"]).code(3);
    assert!(out.stdout.contains("+10.0.0.1 vcenter"), "{}", out.stdout);
    assert!(out.stdout.contains("--- a/etc/hosts"));
    assert!(out.stdout.contains("mode 1644 -> 1600"));
    let only = env.run(&["diff", "etc/passwd"]).code(3);
    assert!(!only.stdout.contains("vcenter"));
    let json = env.run(&["diff", "--json"]).code(3).json();
    let diffs = json["diffs"].as_array().expect("diffs array");
    assert_eq!(diffs.len(), 2, "{json}");
    assert!(diffs
        .iter()
        .any(|d| d.as_str().unwrap().contains("+10.0.0.1 vcenter")));
    assert!(json["warnings"].is_array(), "{json}");
    assert!(
        json["archive"].as_str().unwrap().ends_with("state.tgz"),
        "{json}"
    );
}

#[test]
fn no_eligible_bank_is_a_clear_error() {
    let env = TestEnv::esxi();
    env.boot_cfg("bootbank", 3, 2, "b");
    env.boot_cfg("altbootbank", 2, 3, "b");
    let out = env.run(&["backup"]).code(1);
    assert!(
        out.stderr.contains("no eligible boot bank"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("bootstate=2"));
    let _ = MTIME;
}

#[test]
fn an_unreadable_archive_is_replaced_even_when_nothing_is_selected() {
    let env = TestEnv::new();
    fs::write(env.state("bootbank"), "corrupt").unwrap();
    let report = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(report["action"], "written");
    assert_eq!(report["files"], 0);
    env.run(&["status"]).ok();
}

/// Every `.#` branch under the root's `etc` removed (what a lost RAM disk state looks like).
fn drop_branches(env: &TestEnv) {
    for entry in walkdir::WalkDir::new(env.path("etc")) {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(".#") {
            fs::remove_file(entry.path()).unwrap();
        }
    }
}

#[test]
fn an_empty_selection_never_replaces_a_full_archive_unless_forced() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let before = fs::read(env.state("bootbank")).unwrap();
    drop_branches(&env);
    let out = env.run(&["backup"]).code(1);
    assert!(out.stderr.contains("nothing is selected"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&env.state("bootbank").display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--root"), "{}", out.stderr);
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), before);
    env.run(&["backup", "--shutdown"]).code(1);
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), before);
    let forced = env.run(&["backup", "--force", "--json"]).ok().json();
    assert_eq!(forced["action"], "written");
    assert_eq!(forced["files"], 0);
    assert_ne!(fs::read(env.state("bootbank")).unwrap(), before);
}

#[test]
fn a_wrong_root_keeps_the_banks_archive_byte_identical() {
    let host = TestEnv::esxi();
    host.run(&["backup"]).ok();
    let rescue = TestEnv::new();
    fs::copy(host.state("bootbank"), rescue.state("bootbank")).unwrap();
    let before = fs::read(rescue.state("bootbank")).unwrap();
    rescue.run(&["backup"]).code(1);
    assert_eq!(fs::read(rescue.state("bootbank")).unwrap(), before);
}

#[test]
fn nothing_selected_and_no_archive_writes_nothing() {
    let env = TestEnv::new();
    env.unmodified("etc/hosts", "127.0.0.1 localhost\n");
    let out = env.run(&["backup", "--shutdown"]).ok();
    assert!(out.stderr.contains("no archive written"), "{}", out.stderr);
    assert!(!env.state("bootbank").exists());
    let report = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(report["action"], "unchanged");
    assert!(!env.state("bootbank").exists());
}
