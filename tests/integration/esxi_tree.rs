//! A tree shaped like a real ESXi `/etc` (issue 13's acceptance): statectl's selection is what
//! `backup.sh`'s own pipeline selects, run under busybox; an archive busybox made of that tree
//! restores onto the same layout through the image's `etc/sfcb/repository` link, and a link
//! out of the root is refused with nothing written.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::testenv::{require, sh, tree, TestEnv};

/// Where the image links `etc/sfcb/repository` (CIM subscriptions).
const REPOSITORY: &str = "var/lib/sfcb/registration/repository";

/// Lays out an ESXi-like `etc` under `env`: modified (branched) files, unmodified T-flagged
/// ones, plain ones, a `.#` orphan, and the repository link (`link` is its target text).
fn esxi_tree(env: &TestEnv, link: &str) {
    let mut branched: Vec<String> = [
        "etc/passwd",
        "etc/shadow",
        "etc/hosts",
        "etc/inetd.conf",
        "etc/ntp.conf",
        "etc/resolv.conf",
        "etc/vmware/esx.conf",
        "etc/vmware/.backup.counter",
        "etc/vmware/ssl/rui.key",
        "etc/vmware/ssl/rui.crt",
        "etc/vmware/vpxa/vpxa.cfg",
        "etc/vmware/lunTimestamps.log",
        "etc/rc.local.d/local.sh",
        "etc/sfcb/sfcb.cfg",
        "etc/security/pam.d/passwd",
        "etc/ssh/sshd_config",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for key in ["rsa", "ecdsa", "ed25519"] {
        branched.push(format!("etc/ssh/ssh_host_{key}_key"));
        branched.push(format!("etc/ssh/ssh_host_{key}_key.pub"));
    }
    for n in 0..12 {
        branched.push(format!("etc/vmware/hostd/config-{n:02}.xml"));
    }
    for path in &branched {
        env.flagged(path, &format!("modified {path}\n"));
    }
    for path in [
        "etc/motd",
        "etc/profile",
        "etc/vmware/config",
        "etc/vmware/hostd/proxy.xml",
        "etc/ssh/moduli",
    ] {
        env.unmodified(path, &format!("image default {path}\n"));
    }
    env.file("etc/issue", Some("plain\n"), 0o644);
    env.file("etc/.#gone.conf", Some("orphan branch\n"), 0o644);
    for n in 0..3 {
        env.flagged(
            &format!("{REPOSITORY}/root/interop/sub-{n}.idx"),
            "CIM_Indication\n",
        );
    }
    env.unmodified(&format!("{REPOSITORY}/root/interop/default.idx"), "image\n");
    symlink(link, env.path("etc/sfcb/repository")).unwrap();
}

/// The list `backup.sh` of 6.7 saves, from its own pipeline run by busybox in `root`.
fn script_selection(root: &Path) -> Vec<String> {
    let out = sh(
        root,
        r#"busybox find etc -follow -type f -name '.#*' 2>/dev/null | busybox sed -e 's,.#\(.*\),\1,g' | while read name; do if [ -f "$name" ]; then echo "$name"; fi; done"#,
    );
    let mut files: Vec<String> = out.lines().map(str::to_string).collect();
    files.sort();
    files
}

/// What statectl would save: the `added` list of `status` against no archive.
fn statectl_selection(env: &TestEnv) -> Vec<String> {
    let status = env.run(&["status", "--json"]).code(3).json();
    status["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn selection_equals_what_backup_sh_selects_under_busybox() {
    require("busybox");
    let env = TestEnv::new();
    // Relative, so busybox (which resolves links against the real `/`) sees the same tree.
    esxi_tree(&env, "../../var/lib/sfcb/registration/repository");
    let expected = script_selection(&env.root);
    assert!(expected.len() > 30, "{expected:?}");
    assert!(expected.contains(&"etc/sfcb/repository/root/interop/sub-0.idx".to_string()));
    assert_eq!(statectl_selection(&env), expected);
    // ESXi's own absolute link, resolved within the root, selects the same files.
    fs::remove_file(env.path("etc/sfcb/repository")).unwrap();
    symlink(format!("/{REPOSITORY}"), env.path("etc/sfcb/repository")).unwrap();
    assert_eq!(statectl_selection(&env), expected);
    for unmodified in ["etc/motd", "etc/issue", "etc/gone.conf"] {
        assert!(!expected.iter().any(|p| p == unmodified), "{unmodified}");
    }
}

#[test]
fn sticky_mode_also_takes_unmodified_flagged_files() {
    let env = TestEnv::new();
    esxi_tree(&env, &format!("/{REPOSITORY}"));
    let branched = statectl_selection(&env);
    env.file("etc/statectl.toml", Some("select = \"sticky\"\n"), 0o644);
    let sticky = statectl_selection(&env);
    let extra: Vec<&String> = sticky.iter().filter(|p| !branched.contains(p)).collect();
    assert!(extra.contains(&&"etc/motd".to_string()), "{extra:?}");
    assert!(
        extra.contains(&&"etc/sfcb/repository/root/interop/default.idx".to_string()),
        "{extra:?}"
    );
    assert!(!sticky.contains(&"etc/issue".to_string()));
}

#[test]
fn a_link_loop_and_a_link_out_of_the_root_are_warnings_not_failures() {
    let env = TestEnv::new();
    esxi_tree(&env, "/nonexistent/repository");
    symlink("..", env.path("etc/vmware/loop")).unwrap();
    let out = env.run(&["-v", "backup", "--json"]).ok();
    let report = out.json();
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("etc/sfcb/repository"), "{warnings}");
    assert!(warnings.contains("loop"), "{warnings}");
    let listed = env.run(&["list", "--json"]).ok().json();
    assert!(!listed.to_string().contains("sub-0.idx"));
}

#[test]
fn a_name_no_reader_could_restore_fails_the_backup_naming_it() {
    let env = TestEnv::new();
    env.flagged("etc/ok.conf", "x\n");
    env.flagged("etc/bad\u{1}name", "x\n");
    let out = env.run(&["backup"]).code(1);
    assert!(out.stderr.contains("control character"), "{}", out.stderr);
    assert!(out.stderr.contains("bad"), "{}", out.stderr);
    assert!(!env.state("bootbank").exists());
}

/// `state.tgz` made as backup.sh makes it, by busybox tar, of what the script selects.
fn busybox_archive(env: &TestEnv, files: &[String]) -> std::path::PathBuf {
    let stage = env.dir.path().join("state.1");
    fs::create_dir_all(&stage).unwrap();
    sh(
        &env.root,
        &format!(
            "busybox tar czf '{s}/local.tgz' {} && cd '{s}' && busybox tar czf state.tgz local.tgz",
            files.join(" "),
            s = stage.display()
        ),
    );
    stage.join("state.tgz")
}

#[test]
#[ignore = "needs busybox (.ci/run installs it)"]
fn a_busybox_archive_restores_through_the_in_root_link_and_never_out_of_the_root() {
    require("busybox");
    let old = TestEnv::new();
    esxi_tree(&old, "../../var/lib/sfcb/registration/repository");
    let archive = busybox_archive(&old, &script_selection(&old.root));
    let archive = archive.to_str().unwrap();

    let new = TestEnv::new();
    fs::create_dir_all(new.path(REPOSITORY)).unwrap();
    fs::create_dir_all(new.path("etc/sfcb")).unwrap();
    symlink(format!("/{REPOSITORY}"), new.path("etc/sfcb/repository")).unwrap();
    new.run(&["restore", archive]).ok();
    let idx = format!("{REPOSITORY}/root/interop/sub-1.idx");
    assert_eq!(new.read(&idx), b"CIM_Indication\n");
    assert!(fs::symlink_metadata(new.path("etc/sfcb/repository"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        new.read("etc/vmware/esx.conf"),
        old.read("etc/vmware/esx.conf")
    );

    let outside = tempfile::tempdir().unwrap();
    let victim = TestEnv::new();
    fs::create_dir_all(victim.path("etc/sfcb")).unwrap();
    symlink(outside.path(), victim.path("etc/sfcb/repository")).unwrap();
    let before = tree(&victim.root);
    let err = victim.run(&["restore", archive]).code(1);
    assert!(err.stderr.contains("etc/sfcb/repository"), "{}", err.stderr);
    assert!(
        err.stderr.contains("does not exist inside the root"),
        "{}",
        err.stderr
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(
        tree(&victim.root),
        before,
        "a refused restore wrote something"
    );
}
