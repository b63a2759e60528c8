//! The Ansible playbook (`contrib/ansible/statectl-fleet.yml`) run by ansible-core against
//! three local hosts (connection `local`, each its own root, UUID, banks and run dir; one with
//! another NTP server): both ways of getting the copies (`statectl_copy_to`, a shared
//! directory; `statectl_fetch_to`, export + fetch to the controller) leave each host's newest
//! copy, holding its bank's archive, in `DIR/<host id>/`, and the drift report names the
//! drifted host. Needs `ansible-playbook` (.ci/run installs ansible-core; ignored otherwise).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::copies::fleet_host;
use crate::encrypted::member;
use crate::testenv::{require, TestEnv};

const PLAYBOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/ansible/statectl-fleet.yml"
);

/// A YAML inventory of the hosts, each `esx-<i>` on its own root, run dir and staging dir.
fn inventory(hosts: &[TestEnv], at: &Path) {
    let mut text = String::from("esxi:\n  hosts:\n");
    for (i, env) in hosts.iter().enumerate() {
        text.push_str(&format!(
            "    esx-{i}:\n      ansible_connection: local\n      statectl_root: \"{}\"\n      \
             statectl_env: {{STATECTL_RUN_DIR: \"{}\"}}\n      statectl_stage: \"{}\"\n",
            env.root.display(),
            env.run_dir.display(),
            env.dir.path().join("stage").display()
        ));
    }
    text.push_str("  vars:\n    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n");
    fs::write(at, text).unwrap();
}

/// Runs the playbook with `extra` variables; asserts it succeeded.
fn play(work: &Path, extra: &[(&str, &Path)]) {
    let mut cmd = Command::new("ansible-playbook");
    cmd.arg("-i")
        .arg(work.join("inventory.yml"))
        .arg(PLAYBOOK)
        .arg("-e")
        .arg(format!("statectl_bin={}", env!("CARGO_BIN_EXE_statectl")));
    for (name, path) in extra {
        cmd.arg("-e").arg(format!("{name}={}", path.display()));
    }
    let out = cmd
        .env("ANSIBLE_LOCAL_TEMP", work.join("ansible-local"))
        .env("ANSIBLE_REMOTE_TEMP", work.join("ansible-remote"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOME", work.join("ansible-home"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ansible-playbook failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each host's directory in `store` holds one bundle with its bank's archive; the report
/// names `uuid-02` alone, for etc/ntp.conf.
fn check(hosts: &[TestEnv], store: &Path, report: &Path) {
    for (i, env) in hosts.iter().enumerate() {
        let dir = store.join(format!("uuid-0{i}"));
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].starts_with(&format!("configBundle-esx0{i}-")),
            "{names:?}"
        );
        let bank = fs::read(env.state("bootbank")).unwrap();
        assert_eq!(member(&dir.join(&names[0]), "state.tgz"), bank, "host {i}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(report["hosts"].as_array().unwrap().len(), 3, "{report:#}");
    let drift = report["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{report:#}");
    assert_eq!(drift[0]["path"], "etc/ntp.conf");
    assert_eq!(
        drift[0]["groups"][1]["hosts"],
        serde_json::json!(["uuid-02"])
    );
}

#[test]
#[ignore = "needs ansible-playbook (.ci/run installs it)"]
fn the_playbook_copies_every_host_and_reports_the_drifted_one() {
    require("ansible-playbook");
    let work = tempfile::tempdir().unwrap();
    let hosts: Vec<TestEnv> = (0..3).map(fleet_host).collect();
    hosts[2].flagged("etc/ntp.conf", "server ntp.other.example\n");
    inventory(&hosts, &work.path().join("inventory.yml"));
    // No shared datastore: export on each host, fetch to the controller.
    let fetched = work.path().join("fetched");
    fs::create_dir(&fetched).unwrap();
    let report = work.path().join("fetched-drift.json");
    play(
        work.path(),
        &[
            ("statectl_fetch_to", &fetched),
            ("statectl_drift_report", &report),
        ],
    );
    check(&hosts, &fetched, &report);
    // A directory every host sees: backup --copy-to.
    let shared = work.path().join("shared");
    fs::create_dir(&shared).unwrap();
    let report = work.path().join("shared-drift.json");
    play(
        work.path(),
        &[
            ("statectl_copy_to", &shared),
            ("statectl_drift_report", &report),
        ],
    );
    check(&hosts, &shared, &report);
}
