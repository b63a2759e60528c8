//! `install` and `export`: ESXi configuration bundles out of one host and into another, the
//! UUID and build checks, and `--keep` pruning (issue 4's acceptance list); bundles as
//! `firmwareConfig.sh` writes and reads them, `vmware -l` stubbed on PATH (issue 13's).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::testenv::{gzip, outcome, TestEnv};

const BUILD: &str = "7.0.3-0.20.19193900";
/// What `vmware -l` prints on a host of [`BUILD`].
const RELEASE: &str = "VMware ESXi 7.0.3 Update 3";

/// Gives a bank the `useropts.gz` ESXi keeps there.
fn useropts(env: &TestEnv, bank: &str, text: &str) {
    fs::write(env.bank(bank).join("useropts.gz"), gzip(text.as_bytes())).unwrap();
}

/// Runs `export --to DIR` at the given clock, with `vmware -l` answering [`RELEASE`].
fn export_at(env: &TestEnv, dir: &Path, now: i64, extra: &[&str]) -> PathBuf {
    let mut args = vec!["export", "--to", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let output = env
        .command(&args)
        .env("STATECTL_NOW", now.to_string())
        .env("PATH", env.stub_vmware(RELEASE))
        .output()
        .unwrap();
    let json = outcome(output).ok().json();
    PathBuf::from(json["bundle"].as_str().unwrap())
}

/// A host with a backup and a bundle of it.
fn exported() -> (TestEnv, PathBuf) {
    let env = TestEnv::esxi();
    useropts(&env, "bootbank", "vmkLinuxHost=1 ignoreHeadless=TRUE\n");
    env.run(&["backup"]).ok();
    let dir = env.dir.path().join("bundles");
    fs::create_dir(&dir).unwrap();
    let bundle = export_at(&env, &dir, 1_735_732_800, &[]);
    (env, bundle)
}

/// A fresh host with this UUID in its esx.conf and `build` in its banks.
fn new_host(uuid: &str, build: &str) -> TestEnv {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 0, build);
    env.flagged(
        "etc/vmware/esx.conf",
        &format!("/adv/Misc/HostName = \"esx02\"\n/system/uuid = \"{uuid}\"\n"),
    );
    env
}

fn members(bundle: &Path) -> Vec<(String, Vec<u8>)> {
    let file = fs::File::open(bundle).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn export_writes_the_esxi_layout_and_installs_on_a_matching_host() {
    let (old, bundle) = exported();
    assert_eq!(
        bundle.file_name().unwrap().to_str().unwrap(),
        "configBundle-esx01-20250101T120000Z.tgz"
    );
    let mode = fs::metadata(&bundle).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let found = members(&bundle);
    assert_eq!(found[0].0, "Manifest.txt");
    assert_eq!(
        String::from_utf8_lossy(&found[0].1),
        "RELEASELEVEL=VMware ESXi 7.0.3 Update 3\nUUID=5f1c-01\n\
         KERNELOPTS=autoPartition=FALSE\nUSEROPTS=vmkLinuxHost=1 ignoreHeadless=TRUE\n"
    );
    assert_eq!(
        found[1],
        ("state.tgz".into(), fs::read(old.state("bootbank")).unwrap())
    );

    let new = new_host("5f1c-01", BUILD);
    let path = new.stub_vmware(RELEASE);
    let out = new
        .run_with_path(&path, &["install", bundle.to_str().unwrap()])
        .ok();
    assert!(out.stdout.contains("next boot"), "{}", out.stdout);
    assert_eq!(
        new.useropts("bootbank"),
        "vmkLinuxHost=1 ignoreHeadless=TRUE\n",
        "USEROPTS did not round-trip"
    );
    assert_eq!(
        fs::read(new.state("bootbank")).unwrap(),
        fs::read(old.state("bootbank")).unwrap()
    );
    let cfg = fs::read_to_string(new.bank("bootbank").join("boot.cfg")).unwrap();
    assert!(cfg.contains("--- state.tgz"), "{cfg}");
    assert!(
        !new.path("etc/hosts").exists(),
        "install changed the running host"
    );
}

#[test]
fn another_uuid_needs_force_and_another_build_is_never_installed() {
    let (_old, bundle) = exported();
    let bundle = bundle.to_str().unwrap();
    let other = new_host("another-uuid", BUILD);
    let err = other.run(&["install", bundle]).code(1);
    assert!(
        err.stderr.contains("UUID") && err.stderr.contains("--force"),
        "{}",
        err.stderr
    );
    assert!(!other.state("bootbank").exists());
    other.run(&["install", "--force", bundle]).ok();
    assert!(other.state("bootbank").exists());

    let upgraded = new_host("5f1c-01", "8.0.1-0.0.21495797");
    for args in [&["install", bundle][..], &["install", "--force", bundle]] {
        let err = upgraded.run(args).code(1);
        assert!(err.stderr.contains("never installed"), "{}", err.stderr);
        assert!(!upgraded.state("bootbank").exists());
    }
}

/// A bare state.tgz carries its host's UUID in its own `etc/vmware/esx.conf`: another host
/// needs --force; another build is never installed.
#[test]
fn a_bare_state_tgz_is_checked_for_its_host_uuid_and_build() {
    let old = TestEnv::esxi();
    old.run(&["backup"]).ok();
    let archive = old.state("bootbank");
    let archive_arg = archive.to_str().unwrap();
    let same = new_host("5f1c-01", BUILD);
    same.run(&["install", archive_arg]).ok();
    assert_eq!(
        fs::read(same.state("bootbank")).unwrap(),
        fs::read(&archive).unwrap()
    );
    let other = new_host("x", BUILD);
    let err = other.run(&["install", archive_arg]).code(1);
    assert!(
        err.stderr.contains("UUID `5f1c-01`") && err.stderr.contains("--force"),
        "{}",
        err.stderr
    );
    assert!(!other.state("bootbank").exists());
    other.run(&["install", "--force", archive_arg]).ok();
    assert!(other.state("bootbank").exists());
    let upgraded = new_host("5f1c-01", "8.0.1-0.0.21495797");
    upgraded.run(&["install", "--force", archive_arg]).code(1);
    assert!(!upgraded.state("bootbank").exists());
}

#[test]
fn a_bundle_with_an_unsafe_member_is_refused() {
    let (_old, bundle) = exported();
    let hostile = bundle.with_file_name("configBundle-esx01-20250101T130000Z.tgz");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let manifest = b"RELEASELEVEL=VMware ESXi 7.0.3 build-19193900\nUUID=5f1c-01\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, "Manifest.txt", &manifest[..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..12].copy_from_slice(b"../state.tgz");
    }
    header.set_cksum();
    builder.append(&header, &b"junk"[..]).unwrap();
    fs::write(&hostile, builder.into_inner().unwrap().finish().unwrap()).unwrap();
    let new = new_host("5f1c-01", BUILD);
    let err = new.run(&["install", hostile.to_str().unwrap()]).code(1);
    assert!(err.stderr.contains("../state.tgz"), "{}", err.stderr);
    assert!(!new.state("bootbank").exists());
}

#[test]
fn keep_two_leaves_the_two_newest_of_this_host_and_nothing_else_is_touched() {
    let (env, first) = exported();
    let dir = first.parent().unwrap().to_path_buf();
    let strangers = [
        "configBundle-esx02-20200101T000000Z.tgz",
        "configBundle-esx01-20200101T000000Z.tgz.bak",
        "configBundle-esx01.tgz",
        "notes.txt",
    ];
    for name in strangers {
        fs::write(dir.join(name), "keep me").unwrap();
    }
    let second = export_at(&env, &dir, 1_735_732_801, &["--keep", "2"]);
    let third = export_at(&env, &dir, 1_735_732_802, &["--keep", "2"]);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = strangers.iter().map(|s| s.to_string()).collect();
    for kept in [&second, &third] {
        expected.push(kept.file_name().unwrap().to_string_lossy().into_owned());
    }
    expected.sort();
    assert_eq!(names, expected);
    assert!(!first.exists());
}

#[test]
fn export_warns_when_changes_are_pending() {
    let (env, _bundle) = exported();
    let dir = env.dir.path().join("bundles");
    let export = |now: &str| {
        let args = ["export", "-v", "--to", dir.to_str().unwrap()];
        outcome(
            env.command(&args)
                .env("STATECTL_NOW", now)
                .output()
                .unwrap(),
        )
        .ok()
    };
    let quiet = export("1735732900");
    assert!(!quiet.stderr.contains("pending"), "{}", quiet.stderr);
    env.flagged("etc/hosts", "10.0.0.9 changed\n");
    let out = export("1735733000");
    assert!(
        out.stderr.contains("1 change(s) are pending"),
        "{}",
        out.stderr
    );
    // Off a terminal without -v (the nightly cron line) it prints nothing, warning included.
    let args = ["export", "--to", dir.to_str().unwrap()];
    let mut cron = env.command(&args);
    let cron = outcome(cron.env("STATECTL_NOW", "1735733100").output().unwrap()).ok();
    assert_eq!((cron.stdout.as_str(), cron.stderr.as_str()), ("", ""));
}
