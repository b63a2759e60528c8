//! Bundles are archives: every command that takes an ARCHIVE reads a `configBundle-*.tgz`'s
//! `state.tgz` (issue 21): `list` (with `Manifest.txt` under `-l`), `verify` (its `"bundle"`
//! fields), `extract`, `restore --dry-run`, `diff --archive` and `passwd --archive`, which
//! rewrites the bundle with its `Manifest.txt` byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use crate::testenv::{outcome, TestEnv};

/// What `vmware -l` prints on the exporting host.
pub const RELEASE: &str = "VMware ESXi 7.0.3 Update 3";

/// A host with a backup and a bundle of it, exported into `<tmp>/bundles`.
pub fn exported() -> (TestEnv, PathBuf) {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let dir = env.dir.path().join("bundles");
    fs::create_dir(&dir).unwrap();
    let output = env
        .command(&["export", "--to", dir.to_str().unwrap(), "--json"])
        .env("STATECTL_NOW", "1735732800")
        .env("PATH", env.stub_vmware(RELEASE))
        .output()
        .unwrap();
    let json = outcome(output).ok().json();
    (env, PathBuf::from(json["bundle"].as_str().unwrap()))
}

/// The member `name` of a gzip'd tar.
pub fn member(archive: &Path, name: &str) -> Vec<u8> {
    let file = fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            return data;
        }
    }
    panic!("no member {name} in {}", archive.display());
}

#[test]
fn list_and_verify_read_a_bundle_and_show_its_manifest() {
    let (env, bundle) = exported();
    let path = bundle.to_str().unwrap();
    let state = env.state("bootbank");
    let listed = env.run(&["list", path, "--json"]).ok();
    let plain = env.run(&["list", state.to_str().unwrap(), "--json"]).ok();
    assert_eq!(
        listed.json(),
        plain.json(),
        "the bundle lists its state.tgz"
    );
    assert!(listed.json().is_array());
    let long = env.run(&["list", "-l", path]).ok();
    assert!(
        long.stdout
            .contains(&format!("bundle: RELEASELEVEL={RELEASE}")),
        "{}",
        long.stdout
    );
    assert!(
        long.stdout.contains("bundle: UUID=5f1c-01"),
        "{}",
        long.stdout
    );
    let verify = env.run(&["verify", path, "--json"]).ok().json();
    assert_eq!(verify["ok"], true);
    assert_eq!(verify["bundle"]["releaselevel"], RELEASE);
    assert_eq!(verify["bundle"]["uuid"], "5f1c-01");
    assert_eq!(verify["bundle"]["kerneloptions"], "autoPartition=FALSE");
    assert!(verify["bundle"]["useropts"].is_string());
    let plain = env.run(&["verify", state.to_str().unwrap(), "--json"]).ok();
    assert!(plain.json()["bundle"].is_null());
    let text = env.run(&["verify", path]).ok();
    assert!(
        text.stdout.contains("bundle: UUID=5f1c-01"),
        "{}",
        text.stdout
    );
}

#[test]
fn extract_diff_and_restore_read_a_bundle() {
    let (env, bundle) = exported();
    let path = bundle.to_str().unwrap();
    let to = env.dir.path().join("x");
    env.run(&["extract", path, "--to", to.to_str().unwrap()])
        .ok();
    assert_eq!(
        fs::read(to.join("etc/hosts")).unwrap(),
        env.read("etc/hosts")
    );
    let plan = env
        .run(&["restore", path, "--dry-run", "--json"])
        .ok()
        .json();
    assert!(plan["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "etc/hosts"));
    env.flagged("etc/hosts", "10.0.0.1 changed\n");
    let diff = env.run(&["diff", "--archive", path, "etc/hosts"]).code(3);
    assert!(diff.stdout.contains("+10.0.0.1 changed"), "{}", diff.stdout);
    assert!(
        diff.stdout.contains("-127.0.0.1 localhost"),
        "{}",
        diff.stdout
    );
    let missing = env.dir.path().join("missing.tgz");
    env.run(&["diff", "--archive", missing.to_str().unwrap()])
        .code(1);
    env.run(&["restore", path]).ok();
    assert_eq!(env.read("etc/hosts"), b"127.0.0.1 localhost\n");
}

#[test]
fn passwd_rewrites_a_bundle_keeping_its_manifest_byte_for_byte() {
    let (env, bundle) = exported();
    let path = bundle.to_str().unwrap();
    let manifest = member(&bundle, "Manifest.txt");
    env.run(&["passwd", "root", "--clear", "--archive", path])
        .ok();
    assert_eq!(member(&bundle, "Manifest.txt"), manifest);
    let to = env.dir.path().join("x");
    env.run(&["extract", path, "--to", to.to_str().unwrap()])
        .ok();
    let shadow = fs::read_to_string(to.join("etc/shadow")).unwrap();
    assert!(shadow.starts_with("root::19000:"), "{shadow}");
    env.run(&["verify", path]).ok();
    // The rewritten bundle still installs on its host.
    let installed = env.run_with_path(&env.stub_vmware(RELEASE), &["install", path]);
    installed.ok();
}
