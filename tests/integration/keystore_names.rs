//! The key store under its other name (docs/reference.md "Encrypted archives"): real 7.x states may
//! carry `.#encryption.info` instead of `encryption.info`. A state shaped as ESXi writes one
//! (the key store first, then `local.tgz.ve`, no manifest; the ConfigStore backup copy in
//! `local.tgz`), keyed with the public dissect.hypervisor key-store vector, is read by every
//! reader, rewritten encrypted under the name it had, and still opens in dissect.hypervisor;
//! a state holding both names is refused, naming both, and kept.

use std::fs;

use crate::encrypted::{dissect_decrypt, envelope_of, esxi_state, member};
use crate::testenv::{sh, TestEnv};

/// The key store of dissect.hypervisor's envelope tests (its key id is
/// `7e62cec5-6aef-4d7e-838b-cae32eefd251`).
const DISSECT_KEYSTORE: &str = ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\n\
    mode = \"NONE\"\nConfigEncData = \"keyId=fmLOxWrvTX6Di8rjLu/SUQ%3d%3d:\
    data1=Uz8MFZfqTbWN2jIHbFPhag%3d%3d:data2=IDcZE41aR+uxDv7Iz8zJSA%3d%3d:version=1\"\n";
const HIDDEN: &str = ".#encryption.info";
const STORE: &str = "var/lib/vmware/configstore/backup/current-store-1";

/// An esxi host whose bootbank holds a 7.x-shaped encrypted state with the key store named
/// `keystore_names` (each with the vector's bytes), then `local.tgz.ve`.
fn host_with(keystore_names: &[&str]) -> TestEnv {
    let env = TestEnv::esxi();
    env.file(STORE, Some("SQLite format 3\0 (stand-in)"), 0o644);
    env.run(&["backup"]).ok();
    let state = env.state("bootbank");
    let sealed = envelope_of(&member(&state, "local.tgz"), DISSECT_KEYSTORE.as_bytes());
    let mut members: Vec<(&str, &[u8])> = keystore_names
        .iter()
        .map(|name| (*name, DISSECT_KEYSTORE.as_bytes()))
        .collect();
    members.push(("local.tgz.ve", &sealed));
    fs::write(&state, esxi_state(&members)).unwrap();
    env
}

fn member_names(env: &TestEnv) -> Vec<String> {
    let listed = sh(
        env.dir.path(),
        &format!("tar -tzf {}", env.state("bootbank").display()),
    );
    listed.lines().map(str::to_string).collect()
}

#[test]
fn a_hidden_keystore_is_read_and_a_rewrite_keeps_its_name() {
    let env = host_with(&[HIDDEN]);
    let status = env.run(&["--json", "status"]).ok().json();
    assert_eq!(status["encrypted"], "none-mode");
    let state = env.state("bootbank");
    let listed = env.run(&["--json", "list", state.to_str().unwrap()]).ok();
    assert!(listed.stdout.contains(STORE), "{}", listed.stdout);
    env.run(&["verify"]).ok();

    env.flagged("etc/hosts", "10.0.0.7 esx07\n");
    let written = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(written["action"], "written");
    let names = member_names(&env);
    assert!(names.iter().any(|n| n == HIDDEN), "{names:?}");
    assert!(!names.iter().any(|n| n == "encryption.info"), "{names:?}");
    assert_eq!(member(&state, HIDDEN), DISSECT_KEYSTORE.as_bytes());
    let work = env.dir.path().join("x");
    env.run(&["extract", "--to", work.to_str().unwrap()]).ok();
    assert_eq!(
        fs::read(work.join("etc/hosts")).unwrap(),
        b"10.0.0.7 esx07\n"
    );
}

#[test]
#[ignore = "needs python3 with dissect.hypervisor (.ci/run installs it)"]
fn a_rewrite_under_the_hidden_name_still_opens_in_dissect_hypervisor() {
    let env = host_with(&[HIDDEN]);
    env.flagged("etc/hosts", "10.0.0.7 esx07\n");
    env.run(&["backup"]).ok();
    let local = env.dir.path().join("local.tgz");
    dissect_decrypt(&env.state("bootbank"), &local);
    let out = sh(env.dir.path(), &format!("tar -tzf {}", local.display()));
    assert!(out.lines().any(|l| l == "etc/hosts"), "{out}");
}

#[test]
fn passwd_rewrites_under_the_hidden_name_too() {
    let env = host_with(&[HIDDEN]);
    let state = env.state("bootbank");
    let args = [
        "passwd",
        "root",
        "--clear",
        "--archive",
        state.to_str().unwrap(),
    ];
    env.run(&args).ok();
    let names = member_names(&env);
    assert_eq!(
        names
            .iter()
            .filter(|n| n.contains("encryption.info"))
            .count(),
        1,
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == HIDDEN), "{names:?}");
}

#[test]
fn a_state_with_both_names_is_refused_naming_both_and_kept() {
    let env = host_with(&["encryption.info", HIDDEN]);
    let state = env.state("bootbank");
    let before = fs::read(&state).unwrap();
    // status reports an unreadable archive as a warning (every file then counts as added).
    for (args, code) in [
        (vec!["status"], 3),
        (vec!["list", state.to_str().unwrap()], 1),
    ] {
        let out = env.run(&args).code(code);
        assert!(
            out.stderr.contains("encryption.info and .#encryption.info"),
            "{args:?}: {}",
            out.stderr
        );
    }
    env.flagged("etc/hosts", "10.0.0.7 esx07\n");
    let out = env.run(&["backup"]).code(1);
    assert!(
        out.stderr
            .contains("both encryption.info and .#encryption.info"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read(&state).unwrap(),
        before,
        "the archive was replaced"
    );
}
