//! The four jobs of issue 21 acted out end to end on fake roots: the hourly cron (silent when
//! nothing changed, also while a rollback target or a pending install is known), a manual
//! backup before a reboot, a root-password reset of a copied archive, and a move of one host's
//! configuration onto another (export, list, verify, restore, install, the cron run before the
//! reboot, the reboot, the undo).

use std::fs;
use std::path::Path;

use crate::bundle_readers::{exported, member, RELEASE};
use crate::testenv::{tree, TestEnv};

/// Another build of h1's release (7.0.3).
const H2_BUILD: &str = "7.0.3-0.95.23794027";
/// An older release: a rollback target for h1.
const OLD: &str = "6.7.0-0.0.14320388";

/// Host h2: another UUID and build, its own files, no branch for `etc/vmware/ssl/rui.key`.
fn h2() -> TestEnv {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 0, H2_BUILD);
    env.boot_cfg("altbootbank", 2, 0, H2_BUILD);
    env.flagged("etc/passwd", "root:x:0:0:root:/:/bin/sh\n");
    env.flagged("etc/shadow", "root:$6$h2$other:19500:0:99999:7:::\n");
    env.flagged("etc/hosts", "10.0.0.2 esx02\n");
    env.flagged(
        "etc/vmware/esx.conf",
        "/adv/Misc/HostName = \"esx02\"\n/system/uuid = \"6a2d-02\"\n",
    );
    env.flagged("etc/only-on-h2.conf", "h2\n");
    env.run(&["backup"]).ok();
    env
}

#[test]
fn job_1_the_hourly_cron_is_silent_also_with_a_rollback_target_or_a_pending_install() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let quiet = |env: &TestEnv| {
        let (out, log) = env.run_logged(&["backup"]);
        let out = out.ok();
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
        log
    };
    quiet(&env);
    // A rollback target boots next: chosen, so syslog only (each run), stderr with -v.
    env.boot_cfg("altbootbank", 4, 0, OLD);
    let log = quiet(&env);
    assert!(log.iter().any(|m| m.contains("rollback target")), "{log:?}");
    let verbose = env.run(&["backup", "-v"]).ok();
    assert!(
        verbose.stderr.contains("rollback target"),
        "{}",
        verbose.stderr
    );
    // A tie: the same.
    env.boot_cfg("altbootbank", 3, 0, "7.0.3-0.20.19193900");
    let log = quiet(&env);
    assert!(log.iter().any(|m| m.contains("tie: both banks")), "{log:?}");

    // A pending install: the cron run leaves the installed archive alone, silently.
    let env = crate::bank_commands::healthy();
    let copy = env.dir.path().join("copy.tgz");
    fs::copy(env.state("bootbank"), &copy).unwrap();
    env.flagged("etc/hosts", "10.0.0.9 changed after the copy\n");
    env.run(&["install", copy.to_str().unwrap()]).ok();
    let installed = fs::read(env.state("bootbank")).unwrap();
    let log = quiet(&env);
    assert!(log.iter().any(|m| m.contains("pending install")), "{log:?}");
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), installed);
    let check = env.run(&["bank", "check"]).code(1).stdout;
    assert!(check.contains("pending its reboot"), "{check}");
    // --force overwrites it and clears the marker.
    let forced = env.run(&["backup", "--force", "--json"]).ok().json();
    assert_eq!(forced["action"], "written");
    assert_eq!(env.reboot(), 0, "--force cleared the marker");
}

#[test]
fn job_2_a_manual_backup_before_a_reboot_and_one_command_shows_the_next_boot_holds_it() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.flagged("etc/hosts", "10.0.0.7 before the reboot\n");
    env.run(&["status"]).code(3);
    env.run(&["backup"]).ok();
    let status = env.run(&["status"]).ok();
    let bank = env.state("bootbank");
    assert_eq!(
        status.stdout.trim(),
        format!(
            "in sync with {} (the archive the next boot loads)",
            bank.display()
        )
    );
    // With a rollback target booting next, status names the bank backup writes (no stale
    // "modified" against the other bank).
    env.boot_cfg("altbootbank", 4, 0, OLD);
    fs::write(env.state("altbootbank"), b"the 6.7 state").unwrap();
    let json = env.run(&["status", "--json"]).ok().json();
    assert_eq!(json["archive"], bank.to_str().unwrap());
}

#[test]
fn job_3_a_root_password_reset_of_a_copied_state_tgz_and_of_a_bundle() {
    let (env, bundle) = exported();
    let copy = env.dir.path().join("state.tgz");
    fs::copy(env.state("bootbank"), &copy).unwrap();
    let bank_before = fs::read(env.state("bootbank")).unwrap();
    for archive in [copy.as_path(), bundle.as_path()] {
        let path = archive.to_str().unwrap();
        env.run(&["passwd", "root", "--clear", "--archive", path])
            .ok();
        let to = env
            .dir
            .path()
            .join(format!("x-{}", archive.display().to_string().len()));
        env.run(&["extract", path, "--to", to.to_str().unwrap()])
            .ok();
        let shadow = fs::read_to_string(to.join("etc/shadow")).unwrap();
        assert!(shadow.starts_with("root::"), "{shadow}");
    }
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), bank_before);
    assert!(member(&bundle, "Manifest.txt").starts_with(b"RELEASELEVEL="));
}

#[test]
fn job_4_a_config_moves_from_h1_to_h2_and_the_undo_brings_h2_back_exactly() {
    let (_h1, bundle) = exported();
    let bundle = bundle.to_str().unwrap();
    let h2 = h2();
    let path = h2.stub_vmware(RELEASE);
    assert!(h2.run(&["list", bundle, "--json"]).ok().json().is_array());
    h2.run(&["verify", bundle]).ok();
    // Another build and another UUID: one refusal names both, each with its override.
    let refused = h2.run(&["restore", bundle, "--dry-run"]).code(1);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    for needle in [
        "fails 2 checks",
        "build 7.0.3-0.20",
        "UUID `5f1c-01`",
        "--force overrides",
    ] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    let plan = h2.run(&["restore", bundle, "--dry-run", "--force", "--json"]);
    assert!(plan.ok().json()["overwrite"]
        .to_string()
        .contains("etc/hosts"));

    let before = tree(&h2.path("etc"));
    let undo = h2.dir.path().join("undo.tgz");
    let undo = undo.to_str().unwrap();
    let restored = h2.run(&["restore", bundle, "--force", "--undo", undo, "--json"]);
    let restored = restored.ok().json();
    // No .# branch for ntp.conf and rui.key on h2: the next backup would drop them.
    let dropped = serde_json::json!(["etc/ntp.conf", "etc/vmware/ssl/rui.key"]);
    assert_eq!(restored["not_persisted"], dropped);
    assert!(restored["warnings"].to_string().contains("include"));

    let installed = h2
        .run_with_path(&path, &["install", bundle, "--json"])
        .ok()
        .json();
    let replaced = installed["replaced"].as_str().unwrap().to_string();
    assert!(
        replaced.ends_with("bootbank/state-replaced.tgz"),
        "{replaced}"
    );
    let state = fs::read(h2.state("bootbank")).unwrap();
    assert_eq!(state, member(Path::new(bundle), "state.tgz"));
    // The hourly cron between install and reboot leaves the install alone, silently.
    let cron = h2.run(&["backup"]).ok();
    assert_eq!((cron.stdout.as_str(), cron.stderr.as_str()), ("", ""));
    assert_eq!(fs::read(h2.state("bootbank")).unwrap(), state);
    // The reboot clears the marker; the undo then restores h2 exactly, without --force.
    assert_eq!(h2.reboot(), 1);
    let undone = h2.run(&["restore", undo]).ok();
    assert!(undone.stdout.contains("removed"), "{}", undone.stdout);
    assert_eq!(tree(&h2.path("etc")), before);
}

#[test]
fn the_archive_an_install_replaced_installs_back() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let original = fs::read(env.state("bootbank")).unwrap();
    let copy = env.dir.path().join("copy.tgz");
    env.flagged("etc/hosts", "10.0.0.3 other\n");
    env.run(&["backup"]).ok();
    fs::copy(env.state("bootbank"), &copy).unwrap();
    env.run(&["restore", "--dry-run"]).ok();
    fs::write(env.state("bootbank"), &original).unwrap();
    let out = env.run(&["install", copy.to_str().unwrap()]).ok();
    let kept = env.bank("bootbank").join("state-replaced.tgz");
    assert!(
        out.stdout.contains(kept.to_str().unwrap()),
        "{}",
        out.stdout
    );
    assert_eq!(fs::read(&kept).unwrap(), original);
    env.run(&["install", kept.to_str().unwrap()]).ok();
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), original);
}

#[test]
fn install_reboot_is_refused_before_writing_off_the_real_root() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let copy = env.dir.path().join("copy.tgz");
    fs::copy(env.state("bootbank"), &copy).unwrap();
    let before = tree(&env.root);
    let out = env
        .run(&["install", "--reboot", copy.to_str().unwrap()])
        .code(1);
    assert!(out.stderr.contains("--reboot"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert_eq!(tree(&env.root), before);
}

#[test]
#[ignore = "needs /dev/shm, a tmpfs (.ci/run's machine has one)"]
fn a_default_undo_path_on_a_ram_filesystem_says_it_is_lost_at_reboot() {
    crate::testenv::require("/dev/shm");
    let old = TestEnv::esxi();
    old.run(&["backup"]).ok();
    let ram = TestEnv::in_dir(tempfile::tempdir_in("/dev/shm").unwrap());
    ram.flagged("etc/hosts", "10.0.0.5 before\n");
    let archive = old.state("bootbank");
    let out = ram
        .run(&["restore", archive.to_str().unwrap(), "--force"])
        .ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("undo archive:"))
        .unwrap();
    assert!(
        line.contains("lost at reboot: name a datastore with --undo"),
        "{line}"
    );
    // On a disk filesystem the line says nothing of the kind.
    let disk = TestEnv::new();
    disk.flagged("etc/hosts", "10.0.0.5 before\n");
    let out = disk
        .run(&["restore", archive.to_str().unwrap(), "--force"])
        .ok();
    if crate::testenv::sh(disk.dir.path(), "stat -f -c %T .").trim() != "tmpfs" {
        assert!(!out.stdout.contains("lost at reboot"), "{}", out.stdout);
    }
}

#[test]
fn install_refuses_once_naming_every_failed_check_and_its_override() {
    let (_h1, bundle) = exported();
    let bundle = bundle.to_str().unwrap();
    let other = TestEnv::new();
    other.boot_cfg("bootbank", 3, 0, "8.0.1-0.0.21495797");
    other.flagged("etc/vmware/esx.conf", "/system/uuid = \"6a2d-02\"\n");
    let path = other.stub_vmware("VMware ESXi 8.0.1 Update 1");
    for args in [&["install", bundle][..], &["install", "--force", bundle]] {
        let out = other.run_with_path(&path, args).code(1);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!other.state("bootbank").exists());
        let text = &out.stderr;
        assert!(text.contains("never installed"), "{text}");
        assert!(
            text.contains(&format!("install `{RELEASE}` (build 7.0.3-")),
            "{text}"
        );
        if args.len() == 2 {
            assert!(
                text.contains("fails 2 checks") && text.contains("UUID"),
                "{text}"
            );
            assert!(text.contains("--force overrides this"), "{text}");
        }
    }
}
