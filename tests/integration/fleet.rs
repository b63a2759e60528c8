//! `history` and `drift` against stores laid out by hand: hosts backed up with `--copy-to`
//! into one directory at chosen times, plus bundles written by the test (hostile ones among
//! them). Hosts alike but for their identity agree; another NTP server, syslog target or
//! advanced setting on one host is drift naming that host; a hostile bundle is a warning and
//! the other hosts are still compared.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::copies::{fleet_host, stamp};
use crate::testenv::{gzip, tar_of, TestEnv};

const T0: i64 = 1_796_000_000;

/// esx.conf of host `i`: the same settings, its own identity keys.
fn esx_conf(i: usize, extra: &str) -> String {
    format!(
        "/adv/Misc/HostName = \"esx{i:02}\"\n/system/uuid = \"uuid-{i:02}\"\n\
         /adv/Misc/HostIPAddr = \"10.0.0.{i}\"\n/adv/Net/ManagementAddr = \"10.0.0.{i}\"\n\
         /net/vmkernelnic/child[0000]/ipv4address = \"10.0.0.{i}\"\n\
         /net/vmkernelnic/child[0000]/ipv4netmask = \"255.255.255.{i}\"\n\
         /net/pnic/child[0000]/mac = \"00:50:56:00:00:{i:02}\"\n\
         /net/pnic/child[0000]/name = \"vmnic0\"\n\
         /adv/Syslog/global/logHost = \"udp://syslog.example:514\"\n\
         /adv/UserVars/SuppressShellWarning = \"1\"\n{extra}"
    )
}

/// Host `i` set up like the others: its own identity, its own per-host files.
fn alike_host(i: usize) -> TestEnv {
    let env = fleet_host(i);
    env.flagged("etc/vmware/esx.conf", &esx_conf(i, ""));
    env.flagged("etc/ssh/ssh_host_rsa_key", &format!("key of host {i}\n"));
    env.flagged("etc/vmware/ssl/rui.key", &format!("cert key of host {i}\n"));
    env.flagged("etc/random-seed", &format!("seed {i}\n"));
    env.flagged("etc/vmware/.backup.counter", &format!("{i}\n"));
    env
}

fn copy_into(env: &TestEnv, store: &Path, now: i64) {
    let out = env
        .command(&["-q", "backup", "--copy-to", store.to_str().unwrap()])
        .env("STATECTL_NOW", now.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn drift(env: &TestEnv, store: &Path, code: i32) -> Value {
    env.run(&["--json", "drift", store.to_str().unwrap()])
        .code(code)
        .json()
}

/// A store of four alike hosts; returns them and the store.
fn alike_store() -> (Vec<TestEnv>, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let hosts: Vec<TestEnv> = (0..4).map(alike_host).collect();
    for env in &hosts {
        copy_into(env, store.path(), T0);
    }
    (hosts, store)
}

/// A bundle whose `state.tgz` member is named `../state.tgz` (the tar crate refuses to
/// write such a name, so it goes into the header by hand).
fn hostile_bundle(dir: &Path, now: i64) {
    fs::create_dir_all(dir).unwrap();
    let state = gzip(&tar_of(&[("local.tgz", &gzip(&tar_of(&[])), 0o600)]));
    let mut outer = tar_of(&[("Manifest.txt", b"UUID=evil\n", 0o600)]);
    outer.truncate(outer.len() - 1024); // the end-of-archive blocks
    let mut header = tar::Header::new_gnu();
    header.set_size(state.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../state.tgz");
    header.set_cksum();
    let mut builder = tar::Builder::new(outer);
    builder.append(&header, &state[..]).unwrap();
    let bundle = gzip(&builder.into_inner().unwrap());
    fs::write(
        dir.join(format!("configBundle-evil-{}.tgz", stamp(now))),
        bundle,
    )
    .unwrap();
}

#[test]
fn hosts_alike_but_for_their_identity_agree() {
    let (hosts, store) = alike_store();
    let report = drift(&hosts[0], store.path(), 0);
    assert_eq!(report["drift"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["hosts"].as_array().unwrap().len(), 4);
    assert_eq!(report["hosts"][1]["id"], "uuid-01");
    assert_eq!(report["hosts"][1]["name"], "esx01");
    assert_eq!(report["warnings"], serde_json::json!([]));
    let text = hosts[0]
        .run(&["drift", store.path().to_str().unwrap()])
        .ok();
    assert!(
        text.stdout.contains("4 hosts compared: all agree"),
        "{}",
        text.stdout
    );
}

#[test]
fn another_ntp_server_syslog_target_or_advanced_setting_is_drift_naming_the_host() {
    let (hosts, store) = alike_store();
    hosts[1].flagged("etc/ntp.conf", "server ntp.other.example\n");
    copy_into(&hosts[1], store.path(), T0 + 60);
    let conf = esx_conf(2, "").replace("syslog.example", "syslog.other.example");
    hosts[2].flagged("etc/vmware/esx.conf", &conf);
    copy_into(&hosts[2], store.path(), T0 + 60);
    let extra = "/adv/Net/FollowHardwareMac = \"1\"\n";
    hosts[3].flagged("etc/vmware/esx.conf", &esx_conf(3, extra));
    copy_into(&hosts[3], store.path(), T0 + 60);
    let report = drift(&hosts[0], store.path(), 3);
    let items = report["drift"].as_array().unwrap();
    let found = |path: &str, key: Value| {
        items
            .iter()
            .find(|item| item["path"] == path && item["key"] == key)
            .unwrap_or_else(|| panic!("no drift of {path} {key}: {report:#}"))
            .clone()
    };
    let ntp = found("etc/ntp.conf", Value::Null);
    assert_eq!(ntp["groups"][0]["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(ntp["groups"][1]["hosts"], serde_json::json!(["uuid-01"]));
    assert!(ntp["groups"][1]["sha256"].is_string());
    let syslog = found("etc/vmware/esx.conf", "/adv/Syslog/global/logHost".into());
    assert_eq!(syslog["groups"][1]["hosts"], serde_json::json!(["uuid-02"]));
    assert_eq!(
        syslog["groups"][1]["value"],
        "udp://syslog.other.example:514"
    );
    let setting = found("etc/vmware/esx.conf", "/adv/Net/FollowHardwareMac".into());
    assert_eq!(setting["groups"][0]["value"], Value::Null);
    assert_eq!(
        setting["groups"][1]["hosts"],
        serde_json::json!(["uuid-03"])
    );
    assert_eq!(items.len(), 3, "{report:#}");
    let text = hosts[0]
        .run(&["drift", store.path().to_str().unwrap()])
        .code(3);
    assert!(text.stdout.contains("esx01 (uuid-01)"), "{}", text.stdout);
    // --ignore leaves them out: a path glob, and a key glob with its leading `/`.
    let store_arg = store.path().to_str().unwrap();
    let ignored = hosts[0].run(&[
        "--json",
        "drift",
        store_arg,
        "--ignore",
        "etc/ntp.conf",
        "--ignore",
        "/adv/Syslog/*/*",
        "--ignore",
        "/adv/Net/*",
    ]);
    assert_eq!(ignored.code(0).json()["drift"], serde_json::json!([]));
}

#[test]
fn a_hostile_bundle_is_refused_with_a_warning_and_the_others_are_compared() {
    let (hosts, store) = alike_store();
    hostile_bundle(&store.path().join("evil"), T0);
    // A hostile copy newer than a host's good one: that host is left out, not trusted.
    hostile_bundle(&store.path().join("uuid-03"), T0 + 60);
    hosts[1].flagged("etc/ntp.conf", "server ntp.other.example\n");
    copy_into(&hosts[1], store.path(), T0 + 60);
    let report = drift(&hosts[0], store.path(), 3);
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{report:#}");
    assert!(warnings
        .iter()
        .all(|w| w.as_str().unwrap().contains("../state.tgz")));
    let ids: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["uuid-00", "uuid-01", "uuid-02"]);
    assert_eq!(
        report["drift"][0]["groups"][1]["hosts"],
        serde_json::json!(["uuid-01"])
    );
    assert!(!store.path().join("state.tgz").exists());
}

#[test]
fn history_lists_each_copy_newest_first_with_its_changes() {
    let store = tempfile::tempdir().unwrap();
    let env = alike_host(5);
    let other = alike_host(6);
    copy_into(&env, store.path(), T0);
    copy_into(&other, store.path(), T0);
    env.flagged("etc/vmware/hostd/proxy.xml", "<proxy/>\n");
    env.flagged("etc/ntp.conf", "server ntp.other.example\n");
    copy_into(&env, store.path(), T0 + 3600);
    fs::remove_file(env.path("etc/random-seed")).unwrap();
    copy_into(&env, store.path(), T0 + 7200);
    hostile_bundle(&store.path().join("uuid-05"), T0 + 10_800);
    let out = env
        .run(&[
            "--json",
            "history",
            store.path().to_str().unwrap(),
            "--host",
            "esx05",
        ])
        .ok();
    let report = out.json();
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "--host picks one: {report:#}");
    assert_eq!(
        (hosts[0]["id"].as_str(), hosts[0]["name"].as_str()),
        (Some("uuid-05"), Some("esx05"))
    );
    let copies = hosts[0]["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 3, "{report:#}");
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1);
    let times: Vec<&str> = copies.iter().map(|c| c["time"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2026-11-30T02:53:20Z",
            "2026-11-30T01:53:20Z",
            "2026-11-30T00:53:20Z"
        ]
    );
    assert_eq!(copies[0]["removed"], serde_json::json!(["etc/random-seed"]));
    assert_eq!(copies[0]["added"], serde_json::json!([]));
    assert_eq!(
        copies[1]["added"],
        serde_json::json!(["etc/vmware/hostd/proxy.xml"])
    );
    assert_eq!(copies[1]["modified"], serde_json::json!(["etc/ntp.conf"]));
    let oldest = &copies[2];
    assert_eq!(
        oldest["files"].as_u64().unwrap() as usize,
        oldest["added"].as_array().unwrap().len()
    );
    assert_eq!(oldest["build"], "7.0.3-0.20.19193900");
    for copy in copies {
        let bytes = fs::read(copy["path"].as_str().unwrap()).unwrap();
        assert_eq!(copy["size"].as_u64(), Some(bytes.len() as u64));
        let sha: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(copy["sha256"], sha);
    }
    let all = env
        .run(&["--json", "history", store.path().to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(all["hosts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_missing_directory_is_exit_1_naming_it_with_no_json_and_an_empty_one_lists_nothing() {
    let env = TestEnv::new();
    let missing = env.dir.path().join("not-mounted");
    for command in ["history", "drift"] {
        let out = env
            .run(&["--json", command, missing.to_str().unwrap()])
            .code(1);
        assert!(out.stdout.is_empty(), "{command}: {}", out.stdout);
        assert!(
            out.stderr.contains("not-mounted`"),
            "{command}: {}",
            out.stderr
        );
    }
    let empty = env.dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let history = env
        .run(&["--json", "history", empty.to_str().unwrap()])
        .ok();
    let expected = serde_json::json!({"hosts": [], "warnings": []});
    assert_eq!(history.json(), expected);
    let drift = drift(&env, &empty, 0);
    assert_eq!(drift["hosts"], serde_json::json!([]));
}
