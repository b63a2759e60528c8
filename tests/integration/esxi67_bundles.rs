//! Bundles as ESXi 6.7's `firmwareConfig.sh` writes and reads them (issue 13): its layout and
//! `Manifest.txt` install, its release check is a string comparison with `vmware -l` (stubbed
//! on PATH), `KERNELOPTS` and `USEROPTS` land in `boot.cfg` and `useropts.gz`; archives with
//! no files or with members outside the scanned paths are refused unless `--force`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::testenv::{gzip, installed, sh, tar_of, TestEnv};

const BUILD_67: &str = "6.7.0-0.0.14320388";
const U3: &str = "VMware ESXi 6.7.0 Update 3";
const UUID: &str = "5d3f2a10-aaaa-bbbb-cccc-0050569a0001";

/// A 6.7 U3 host with this UUID: its esx.conf (branched) and a `vmware -l` stub saying U3.
fn host_67() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 0, BUILD_67);
    env.boot_cfg("altbootbank", 2, 0, BUILD_67);
    env.flagged(
        "etc/vmware/esx.conf",
        &format!("/adv/Misc/HostName = \"esx67\"\n/system/uuid = \"{UUID}\"\n"),
    );
    env.flagged("etc/hosts", "10.0.0.67 esx67\n");
    let path = env.stub_vmware(U3);
    (env, path)
}

/// The tar the host's scripts run: busybox where installed, else GNU tar.
fn tar_tool() -> &'static str {
    if installed("busybox") {
        "busybox tar"
    } else {
        "tar"
    }
}

/// `configBundle-esx67.tgz` made as `BackupConfiguration` does: `state.tgz` as backup.sh
/// writes it (tar of the files, tar of local.tgz), the manifest's four lines, `tar czf *`.
fn script_bundle(env: &TestEnv, release: &str, kernelopts: &str, useropts: &str) -> PathBuf {
    let tar = tar_tool();
    let stage = env.dir.path().join("firmware-backup.1");
    fs::create_dir_all(&stage).unwrap();
    sh(
        &env.root,
        &format!(
            "{tar} czf '{s}/local.tgz' etc/hosts etc/vmware/esx.conf && cd '{s}' && \
             {tar} czf state.tgz local.tgz && rm local.tgz",
            s = stage.display()
        ),
    );
    let manifest = format!(
        "RELEASELEVEL={release}\nUUID={UUID}\nKERNELOPTS={kernelopts}\nUSEROPTS={useropts}\n"
    );
    fs::write(stage.join("Manifest.txt"), manifest).unwrap();
    let bundle = env.dir.path().join("configBundle-esx67.tgz");
    sh(&stage, &format!("{tar} czf '{}' *", bundle.display()));
    bundle
}

fn boot_cfg(env: &TestEnv) -> String {
    fs::read_to_string(env.bank("bootbank").join("boot.cfg")).unwrap()
}

#[test]
fn a_firmware_config_bundle_installs_and_its_boot_options_land() {
    let (env, path) = host_67();
    let kernelopts = "installerDiskDumpSlotSize=2560 no-auto-partition";
    let bundle = script_bundle(&env, U3, kernelopts, "ignoreHeadless=TRUE");
    let before = boot_cfg(&env);
    env.run_with_path(&path, &["install", bundle.to_str().unwrap()])
        .ok();
    let after = boot_cfg(&env);
    let expected = before
        .replace(
            "kernelopt=autoPartition=FALSE",
            &format!("kernelopt={kernelopts}"),
        )
        .replace("/s.v00\n", "/s.v00 --- state.tgz\n");
    assert_eq!(after, expected);
    assert_eq!(env.useropts("bootbank"), "ignoreHeadless=TRUE\n");
    let inner = env.run(&["list", "--json"]).ok().json();
    assert_eq!(inner.as_array().unwrap().len(), 2);
}

#[test]
fn another_release_level_is_refused_even_with_force_and_the_bank_is_untouched() {
    let (env, path) = host_67();
    let bundle = script_bundle(&env, "VMware ESXi 6.7.0 Update 2", "x=1", "y=2");
    let before = boot_cfg(&env);
    for args in [&["install"][..], &["install", "--force"]] {
        let mut args = args.to_vec();
        args.push(bundle.to_str().unwrap());
        let err = env.run_with_path(&path, &args).code(1);
        assert!(err.stderr.contains("Update 2"), "{}", err.stderr);
        assert!(err.stderr.contains("never installed"), "{}", err.stderr);
        assert!(!env.state("bootbank").exists());
        assert!(!env.bank("bootbank").join("useropts.gz").exists());
        assert_eq!(boot_cfg(&env), before);
    }
}

#[test]
fn without_vmware_only_the_version_is_compared_with_a_warning() {
    let (env, _path) = host_67();
    let bundle = script_bundle(&env, U3, "autoPartition=FALSE", "");
    let out = env.run(&["install", bundle.to_str().unwrap()]).ok();
    assert!(out.stderr.contains("update level"), "{}", out.stderr);
    let seven = script_bundle(&env, "VMware ESXi 7.0.3 Update 3", "a", "b");
    fs::remove_file(env.state("bootbank")).unwrap();
    env.run(&["install", "--force", seven.to_str().unwrap()])
        .code(1);
    assert!(!env.state("bootbank").exists());
}

/// Backs the host up with `vmware` from `path`, exports a bundle into a new `out` directory
/// and returns that directory and the bundle's path.
fn backup_and_export(env: &TestEnv, path: &str) -> (PathBuf, String) {
    env.run_with_path(path, &["backup"]).ok();
    let dir = env.dir.path().join("out");
    fs::create_dir(&dir).unwrap();
    let out = env
        .run_with_path(path, &["export", "--to", dir.to_str().unwrap(), "--json"])
        .ok();
    let bundle = out.json()["bundle"].as_str().unwrap().to_string();
    (dir, bundle)
}

#[test]
fn export_manifest_is_what_the_script_writes() {
    let (env, path) = host_67();
    fs::write(
        env.bank("bootbank").join("useropts.gz"),
        gzip(b"ignoreHeadless=TRUE\n"),
    )
    .unwrap();
    let (dir, bundle) = backup_and_export(&env, &path);
    let manifest = sh(&dir, &format!("tar -xzOf '{bundle}' Manifest.txt"));
    assert_eq!(
        manifest,
        format!(
            "RELEASELEVEL={U3}\nUUID={UUID}\nKERNELOPTS=autoPartition=FALSE\n\
             USEROPTS=ignoreHeadless=TRUE\n"
        )
    );
    // Off a terminal the warning shows with -v only (a cron line mails what it prints).
    let plain = env
        .run(&["export", "-v", "--to", dir.to_str().unwrap()])
        .ok();
    assert!(plain.stderr.contains("may refuse"), "{}", plain.stderr);
}

/// A `state.tgz` whose `local.tgz` holds `files`.
fn state_of(dir: &Path, files: &[(&str, &[u8], u32)]) -> PathBuf {
    let inner = gzip(&tar_of(files));
    let outer = gzip(&tar_of(&[("local.tgz", &inner, 0o644)]));
    let path = dir.join(format!("state-{}.tgz", files.len()));
    fs::write(&path, outer).unwrap();
    path
}

#[test]
fn an_archive_with_no_files_is_installed_only_with_force() {
    let (env, _path) = host_67();
    let empty = state_of(env.dir.path(), &[]);
    installed_only_with_force(&env, &empty, "no files");
}

/// `install ARCHIVE` is refused (exit 1, `why` on stderr, the bank's archive as it was), then
/// `install --force ARCHIVE` puts exactly ARCHIVE into the bank.
fn installed_only_with_force(env: &TestEnv, archive: &Path, why: &str) {
    let before = fs::read(env.state("bootbank")).ok();
    let err = env.run(&["install", archive.to_str().unwrap()]).code(1);
    assert!(err.stderr.contains(why), "{}", err.stderr);
    assert_eq!(fs::read(env.state("bootbank")).ok(), before);
    env.run(&["install", "--force", archive.to_str().unwrap()])
        .ok();
    assert_eq!(
        fs::read(env.state("bootbank")).unwrap(),
        fs::read(archive).unwrap()
    );
}

#[test]
fn a_pack_of_etc_itself_warns_in_verify_and_install_refuses_it() {
    let (env, _path) = host_67();
    env.run(&["backup"]).ok();
    let tree = env.dir.path().join("x");
    env.run(&["extract", "--to", tree.to_str().unwrap()]).ok();
    let wrong = env.dir.path().join("wrong.tgz");
    let etc = tree.join("etc");
    env.run(&[
        "pack",
        etc.to_str().unwrap(),
        "--output",
        wrong.to_str().unwrap(),
    ])
    .ok();
    let verify = env
        .run(&["verify", wrong.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let warnings: Vec<String> = verify["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["level"] == "warning")
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`hosts`") && w.contains("outside")),
        "{verify}"
    );
    installed_only_with_force(&env, &wrong, "outside the scanned");
}

#[test]
fn a_bundle_without_a_manifest_is_invalid() {
    let (env, _path) = host_67();
    let state = state_of(env.dir.path(), &[("etc/hosts", b"x\n", 0o644)]);
    let bundle = env.dir.path().join("configBundle-bad.tgz");
    let outer = gzip(&tar_of(&[("state.tgz", &fs::read(&state).unwrap(), 0o644)]));
    fs::write(&bundle, outer).unwrap();
    let err = env
        .run(&["install", "--force", bundle.to_str().unwrap()])
        .code(1);
    assert!(err.stderr.contains("invalid bundle"), "{}", err.stderr);
    assert!(!env.state("bootbank").exists());
}

#[test]
fn a_bundle_exported_from_a_host_without_uuid_installs_back_on_it() {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 0, BUILD_67);
    env.boot_cfg("altbootbank", 2, 0, BUILD_67);
    env.flagged("etc/hosts", "10.0.0.68 nouuid\n");
    let path = env.stub_vmware(U3);
    let (dir, bundle) = backup_and_export(&env, &path);
    let manifest = sh(&dir, &format!("tar -xzOf '{bundle}' Manifest.txt"));
    assert!(manifest.contains("\nUUID=\n"), "{manifest}");
    let installed = env.run_with_path(&path, &["install", &bundle]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
}
