//! `restore`: an empty root gets every file back exactly, a second plan is all `unchanged`,
//! an overwrite is undone by its undo archive, and the build check (issue 4's acceptance list).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::testenv::{tree, TestEnv, ESXI_SELECTED};

/// An old host with a backup in its bootbank, one file owned by 1234:5678 when we can chown.
fn old_host() -> TestEnv {
    let env = TestEnv::esxi();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(env.path("etc/hosts"), Some(1234), Some(5678)).unwrap();
    }
    env.run(&["backup"]).ok();
    env
}

/// The saved files of `root` as (path, mode, uid, gid, mtime, content).
fn saved(root: &Path) -> Vec<(String, u32, u32, u32, i64, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|f| ESXI_SELECTED.contains(&f.0.as_str()))
        .collect()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restore_into_an_empty_root_reproduces_every_file_and_then_plans_nothing() {
    let old = old_host();
    let new = TestEnv::new();
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    let plan = new
        .run(&["restore", archive, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(strings(&plan["create"]), ESXI_SELECTED);
    let mut keys: Vec<&String> = plan.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["create", "overwrite", "unchanged", "warnings"],
        "{plan}"
    );
    assert!(!new.path("etc/hosts").exists(), "--dry-run wrote");

    let done = new.run(&["restore", archive, "--json"]).ok().json();
    assert_eq!(strings(&done["create"]), ESXI_SELECTED);
    let undo = done["undo"]
        .as_str()
        .expect("an undo archive of the created files");
    let undo = std::path::PathBuf::from(undo);
    assert_eq!(saved(&new.root), saved(&old.root));
    assert_eq!(saved(&new.root).len(), ESXI_SELECTED.len());
    let shadow = fs::metadata(new.path("etc/shadow")).unwrap();
    assert_eq!(shadow.mode() & 0o7777, 0o1400, "sticky bit lost");
    if unsafe { libc::geteuid() } == 0 {
        let hosts = fs::metadata(new.path("etc/hosts")).unwrap();
        assert_eq!((hosts.uid(), hosts.gid()), (1234, 5678));
    }
    let listed = new.run(&["list", undo.to_str().unwrap()]).ok();
    assert_eq!(
        listed.stdout, "",
        "the undo of a creating restore holds no file"
    );

    let again = new
        .run(&["restore", archive, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(strings(&again["unchanged"]), ESXI_SELECTED);
    assert!(strings(&again["create"]).is_empty() && strings(&again["overwrite"]).is_empty());
    assert!(
        new.run(&["restore", archive, "--json"])
            .ok()
            .json()
            .get("undo")
            .is_none(),
        "no file changed, yet an undo archive"
    );
}

#[test]
fn applying_an_undo_removes_the_files_its_restore_created_and_keeps_the_undo() {
    let old = old_host();
    let new = TestEnv::new();
    new.flagged("etc/hosts", "127.0.0.1 new-host\n");
    let before = tree(&new.root);
    let archive = old.state("bootbank");
    let undo = new.dir.path().join("undo.tgz");
    let undo_arg = undo.to_str().unwrap();
    let args = ["restore", archive.to_str().unwrap(), "--undo", undo_arg];
    new.run(&args).ok();
    let first_undo = fs::read(&undo).unwrap();
    // As if the restore had been cut short: a file still differs from the archive.
    new.file("etc/passwd", Some("changed since\n"), 0o1644);
    let again = new.run(&args).code(1);
    assert_eq!(
        new.read("etc/passwd"),
        b"changed since\n",
        "a refused run restored"
    );
    assert!(again.stderr.contains(undo_arg), "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        fs::read(&undo).unwrap(),
        first_undo,
        "the undo file was replaced"
    );
    let plan = new
        .run(&["restore", undo_arg, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(strings(&plan["overwrite"]), ["etc/hosts"]);
    let removed: Vec<&str> = ESXI_SELECTED
        .iter()
        .copied()
        .filter(|p| *p != "etc/hosts")
        .collect();
    assert_eq!(strings(&plan["remove"]), removed);
    new.run(&[
        "restore",
        undo_arg,
        "--undo",
        new.dir.path().join("redo.tgz").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        tree(&new.root),
        before,
        "the undo did not bring the root back"
    );
}

#[test]
fn an_overwrite_is_undone_by_its_undo_archive() {
    let old = old_host();
    let new = TestEnv::new();
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    new.run(&["restore", archive]).ok();
    new.file("etc/hosts", Some("10.0.0.1 changed\n"), 0o1644);
    let changed = saved(&new.root);

    let plan = new
        .run(&["restore", archive, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(strings(&plan["overwrite"]), ["etc/hosts"]);
    let done = new.run(&["restore", archive, "--json"]).ok().json();
    let undo = done["undo"].as_str().expect("an undo archive").to_string();
    assert!(undo.starts_with(new.root.join("var/lib/statectl/undo-").to_str().unwrap()));
    let mode = fs::metadata(&undo).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(saved(&new.root), saved(&old.root));

    let text = new.run(&["restore", &undo]).ok();
    assert!(text.stdout.contains("1 overwritten"), "{}", text.stdout);
    assert_eq!(
        saved(&new.root),
        changed,
        "undo did not bring the change back"
    );
}

#[test]
fn undo_goes_where_named_and_a_directory_destination_is_refused() {
    let old = old_host();
    let new = TestEnv::new();
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    new.run(&["restore", archive]).ok();
    new.file("etc/passwd", Some("changed\n"), 0o1644);
    let undo = new.dir.path().join("undo.tgz");
    let out = new
        .run(&["restore", archive, "--undo", undo.to_str().unwrap()])
        .ok();
    assert!(
        out.stdout.contains(undo.to_str().unwrap()),
        "{}",
        out.stdout
    );
    assert!(undo.is_file());

    fs::remove_file(new.path("etc/hosts")).unwrap();
    fs::create_dir(new.path("etc/hosts")).unwrap();
    let before = tree(&new.root);
    let err = new.run(&["restore", archive]).code(1);
    assert!(
        err.stderr.contains("etc/hosts") && err.stderr.contains("a directory"),
        "{}",
        err.stderr
    );
    assert_eq!(tree(&new.root), before);
}

#[test]
fn another_build_is_refused_unless_forced_and_another_release_always() {
    let old = old_host();
    let new = TestEnv::new();
    new.boot_cfg("bootbank", 3, 0, "8.0.1-0.0.21495797");
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    for args in [&["restore", archive][..], &["restore", archive, "--force"]] {
        let err = new.run(args).code(1);
        assert!(err.stderr.contains("never restored"), "{}", err.stderr);
        // It names the build to install first.
        assert!(
            err.stderr
                .contains("install VMware ESXi 7.0.3 (build 7.0.3-"),
            "{}",
            err.stderr
        );
        assert!(!new.path("etc/hosts").exists());
    }
    new.boot_cfg("bootbank", 3, 0, "7.0.3-0.95.23794027");
    let err = new.run(&["restore", archive]).code(1);
    assert!(
        err.stderr.contains("--force overrides") && err.stderr.contains("0.95.23794027"),
        "{}",
        err.stderr
    );
    assert!(!new.path("etc/hosts").exists());
    new.run(&["restore", archive, "--force"]).ok();
    assert_eq!(saved(&new.root), saved(&old.root));
}

#[test]
fn the_default_archive_is_the_next_boot_banks() {
    let env = old_host();
    env.file("etc/hosts", Some("edited\n"), 0o1644);
    let plan = env.run(&["restore", "--dry-run", "--json"]).ok().json();
    assert_eq!(strings(&plan["overwrite"]), ["etc/hosts"]);
    assert_eq!(strings(&plan["unchanged"]).len(), ESXI_SELECTED.len() - 1);
}

#[test]
fn another_hosts_identity_is_restored_only_with_force() {
    let old = old_host();
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    let new = TestEnv::new();
    new.flagged(
        "etc/vmware/esx.conf",
        "/adv/Misc/HostName = \"esx02\"\n/system/uuid = \"another-uuid\"\n",
    );
    let before = tree(&new.root);
    let err = new.run(&["restore", archive]).code(1);
    assert!(
        err.stderr.contains("5f1c-01") && err.stderr.contains("another-uuid"),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("--force"), "{}", err.stderr);
    assert_eq!(tree(&new.root), before, "a refused restore wrote something");
    new.run(&["restore", "--force", archive]).ok();
    assert_eq!(
        new.read("etc/vmware/esx.conf"),
        old.read("etc/vmware/esx.conf")
    );
}

/// The members of a state.tgz: (name, bytes).
fn outer_members(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(fs::File::open(archive).unwrap());
    let mut outer = tar::Archive::new(gz);
    let entries = outer.entries().unwrap();
    entries
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn an_undo_list_naming_a_path_outside_the_root_is_refused_before_any_write() {
    let old = old_host();
    let new = TestEnv::new();
    let undo = new.dir.path().join("undo.tgz");
    let archive = old.state("bootbank");
    let args = [
        "restore",
        archive.to_str().unwrap(),
        "--undo",
        undo.to_str().unwrap(),
    ];
    new.run(&args).ok();
    let members = outer_members(&undo);
    let manifest = String::from_utf8(members[1].1.clone()).unwrap();
    assert!(manifest.contains("\"remove\""), "{manifest}");
    for evil in ["../outside", "/etc/passwd", "etc/../../x"] {
        let edited = manifest.replacen("\"etc/hosts\"", &format!("{evil:?}"), 1);
        let outer = crate::testenv::tar_of(&[
            (members[0].0.as_str(), &members[0].1, 0o600),
            (members[1].0.as_str(), edited.as_bytes(), 0o600),
        ]);
        let hostile = new.dir.path().join("hostile.tgz");
        fs::write(&hostile, crate::testenv::gzip(&outer)).unwrap();
        let before = tree(&new.root);
        let out = new.run(&["restore", hostile.to_str().unwrap()]).code(1);
        assert!(out.stderr.contains("unsafe path"), "{evil}: {}", out.stderr);
        assert_eq!(tree(&new.root), before, "{evil}: the refused restore wrote");
    }
}
