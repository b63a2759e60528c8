//! Banks statectl writes, opened the way ESXi opens them by an independent reader:
//! dissect.target (through `tests/helpers/dissect_target.py`; ignored when missing) reads
//! `boot.cfg`, every module in `modules=`, `state.tgz`, `local.tgz` or the decrypted
//! `local.tgz.ve`, then `esx.conf` and the ConfigStore copy. It must see the host name,
//! addresses, users and ConfigStore values the test root holds: after `backup` (plain and
//! encrypted, mode NONE), and after `passwd`, `install` and `restore`.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::encrypted::{envelope_of, esxi_state, keystore, member};
use crate::testenv::{python_oracle, TestEnv};

const LIVE: &str = "etc/vmware/configstore/current-store-1";
const LOG_DIR: &str = "esx/syslog/global_settings/";

/// What dissect.target sees in `bank`; fails the test when python3 or dissect.target is missing.
fn dissect(bank: &Path) -> Value {
    let seen = python_oracle("dissect_target.py", &[bank, Path::new("esx")]);
    serde_json::from_slice(&seen).unwrap()
}

/// Clears root's password in `state` with `passwd --archive`, then what dissect.target sees
/// in `bank`, root's shadow field checked empty.
fn cleared_root_password(env: &TestEnv, state: &Path, bank: &Path) -> Value {
    env.run(&[
        "passwd",
        "root",
        "--clear",
        "--archive",
        state.to_str().unwrap(),
    ])
    .ok();
    let seen = dissect(bank);
    assert_eq!(seen["shadow"]["root"], "", "{seen}");
    seen
}

/// Sets the host name and the two addresses in esx.conf (keeping the host's UUID).
fn identity(env: &TestEnv, name: &str, ip: &str) {
    env.flagged(
        "etc/vmware/esx.conf",
        &format!(
            "/adv/Misc/HostName = \"{name}.lab.example\"\n/adv/Misc/HostIPAddr = \"{ip}\"\n\
             /adv/Net/ManagementAddr = \"10.9.9.9\"\n/system/uuid = \"5f1c-01\"\n"
        ),
    );
}

/// Writes the live ConfigStore (ESXi's `Config` table) with one syslog row holding `log_dir`.
fn live_store(env: &TestEnv, log_dir: &str) {
    let path = env.path(LIVE);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS Config (Component TEXT, ConfigGroup TEXT, Name TEXT, \
         Identifier TEXT, ModifiedTime TEXT, CreationTime TEXT, Version INTEGER, \
         Success INTEGER, AutoConfValue TEXT, UserValue TEXT, VitalValue TEXT, \
         CachedValue TEXT, DesiredValue TEXT, Revision INTEGER); DELETE FROM Config;",
    )
    .unwrap();
    let value = json!({ "log_dir": log_dir }).to_string();
    db.execute(
        "INSERT INTO Config VALUES ('esx', 'syslog', 'global_settings', '', 't', 't', 1, 1, \
         NULL, ?1, NULL, NULL, NULL, 1)",
        [value],
    )
    .unwrap();
}

/// An ESXi 7 host: name, addresses, users, a live ConfigStore; its bootbank holds a `*.v00`
/// module as every real bank does (dissect.target looks for one).
fn host() -> TestEnv {
    let env = TestEnv::esxi();
    identity(&env, "esx42", "10.1.2.42");
    env.flagged(
        "etc/passwd",
        "root:x:0:0:Administrator:/:/bin/sh\nops:x:1000:1000:Operator:/:/bin/sh\n",
    );
    live_store(&env, "/scratch/log");
    for bank in ["bootbank", "altbootbank"] {
        fs::write(env.bank(bank).join("s.v00"), b"not a vmtar").unwrap();
    }
    env
}

#[track_caller]
fn assert_host(seen: &Value, name: &str, ip: &str, log_dir: &str) {
    assert_eq!(seen["os"], "esxi", "{seen}");
    assert_eq!(seen["hostname"], name, "{seen}");
    assert_eq!(seen["ips"], json!([ip, "10.9.9.9"]), "{seen}");
    assert_eq!(seen["users"], json!(["root", "ops"]), "{seen}");
    assert_eq!(seen["configstore"][LOG_DIR]["log_dir"], log_dir, "{seen}");
}

#[test]
#[ignore = "needs python3 with dissect.target (.ci/run installs it)"]
fn a_plain_bank_opens_and_so_do_banks_after_passwd_install_and_restore() {
    let env = host();
    env.run(&["backup"]).ok();
    let bank = env.bank("bootbank");
    let seen = dissect(&bank);
    assert_host(&seen, "esx42", "10.1.2.42", "/scratch/log");
    assert!(
        seen["shadow"]["root"].as_str().unwrap().starts_with("$6$"),
        "{seen}"
    );
    let saved = env.dir.path().join("saved.tgz");
    fs::copy(env.state("bootbank"), &saved).unwrap();

    // passwd on the bank's archive: the root password is cleared, everything else kept.
    let state = env.state("bootbank");
    let seen = cleared_root_password(&env, &state, &bank);
    assert_host(&seen, "esx42", "10.1.2.42", "/scratch/log");

    // The host moves on (a new name, address and ConfigStore value) and is backed up.
    identity(&env, "esx43", "10.1.2.43");
    live_store(&env, "/scratch/log2");
    env.run(&["backup"]).ok();
    assert_host(&dissect(&bank), "esx43", "10.1.2.43", "/scratch/log2");

    // install puts the saved archive back into the bank: the saved host opens again.
    env.run(&["install", saved.to_str().unwrap()]).ok();
    assert_host(&dissect(&bank), "esx42", "10.1.2.42", "/scratch/log");

    // The host reboots into the installed state (the install's marker goes with the RAM disk).
    assert_eq!(env.reboot(), 1);

    // restore writes the saved files into the root; the next backup's bank has the restored
    // esx.conf, and the live ConfigStore (what hostd serves until the reboot) as its snapshot.
    env.run(&["restore", saved.to_str().unwrap()]).ok();
    env.run(&["backup"]).ok();
    assert_host(&dissect(&bank), "esx42", "10.1.2.42", "/scratch/log2");
}

#[test]
#[ignore = "needs python3 with dissect.target (.ci/run installs it)"]
fn an_encrypted_bank_opens_after_backup_and_passwd() {
    let env = host();
    env.run(&["backup"]).ok();
    let state = env.state("bootbank");
    let keys = keystore("NONE");
    let sealed = envelope_of(&member(&state, "local.tgz"), &keys);
    fs::write(
        &state,
        esxi_state(&[("encryption.info", &keys), ("local.tgz.ve", &sealed)]),
    )
    .unwrap();
    let bank = env.bank("bootbank");
    let seen = dissect(&bank);
    assert_host(&seen, "esx42", "10.1.2.42", "/scratch/log");

    identity(&env, "esx44", "10.1.2.44");
    live_store(&env, "/scratch/log4");
    let written = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(written["action"], "written");
    let status = env.run(&["--json", "status"]).ok().json();
    assert_eq!(
        status["encrypted"], "none-mode",
        "the rewrite is not encrypted"
    );
    assert_host(&dissect(&bank), "esx44", "10.1.2.44", "/scratch/log4");

    let seen = cleared_root_password(&env, &state, &bank);
    assert_host(&seen, "esx44", "10.1.2.44", "/scratch/log4");
}
