//! Host files are read through the root's own links *within* the root: the undo archive's
//! copies, `required` files and identity files never come from the machine running statectl.
//! Each test puts the same absolute path both outside the root (the machine's, holding a
//! secret) and inside it (the root's own), and links to it from the root: only the root's bytes
//! may appear. Also ESXi 6.7's image links (`etc/sfcb/repository`, `etc/likewise/lib/db`),
//! which a restore must write and save through, and the selection walk's limit on a "diamond"
//! of directory links.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::swapper::{holds, unpacked};
use crate::testenv::TestEnv;

const SECRET: &[u8] = b"OUTSIDE-SECRET";

/// An absolute directory that exists outside the root (holding `name` = [`SECRET`]) and, at
/// the same path, inside it (holding `name` = `inside`); returns the absolute path.
fn twin_dirs(env: &TestEnv, name: &str, inside: &str) -> PathBuf {
    let outside = env.dir.path().join("machine");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join(name), SECRET).unwrap();
    let mirrored = env.root.join(outside.strip_prefix("/").unwrap());
    fs::create_dir_all(&mirrored).unwrap();
    fs::write(mirrored.join(name), inside).unwrap();
    outside
}

/// `statectl pack` of `files` (root-relative path, content) into `<env dir>/<name>`.
fn packed(env: &TestEnv, name: &str, files: &[(&str, &str)]) -> String {
    let tree = env.dir.path().join(format!("{name}.tree"));
    for (rel, content) in files {
        let path = tree.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
    }
    let archive = env.dir.path().join(name);
    let (tree, out) = (tree.to_str().unwrap(), archive.to_str().unwrap());
    env.run(&["pack", tree, "--output", out]).ok();
    out.to_string()
}

#[test]
fn the_undo_archive_copies_the_roots_file_behind_an_absolute_link() {
    let env = TestEnv::new();
    let machine = twin_dirs(&env, "shadow", "the root's shadow\n");
    symlink(&machine, env.path("etc/lnk")).unwrap();
    let archive = packed(&env, "a.tgz", &[("etc/lnk/shadow", "restored\n")]);
    let undo = env.dir.path().join("undo.tgz");
    env.run(&["restore", &archive, "--undo", undo.to_str().unwrap()])
        .ok();
    let saved = unpacked(&undo);
    assert!(
        holds(&saved, b"the root's shadow\n"),
        "the root's file saved"
    );
    assert!(
        !holds(&saved, SECRET),
        "the machine's file got into the undo archive"
    );
    assert_eq!(fs::read(machine.join("shadow")).unwrap(), SECRET);
    let inside = env.root.join(machine.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside.join("shadow")).unwrap(), b"restored\n");
}

#[test]
fn a_required_file_behind_an_absolute_link_is_the_roots() {
    let env = TestEnv::new();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n");
    let machine = twin_dirs(&env, "secret", "the root's secret\n");
    symlink(&machine, env.path("etc/l")).unwrap();
    fs::write(
        env.path("etc/statectl.toml"),
        "required = [\"etc/l/secret\"]\n",
    )
    .unwrap();
    env.run(&["backup"]).ok();
    let archived = unpacked(&env.state("bootbank"));
    assert!(holds(&archived, b"the root's secret\n"));
    assert!(
        !holds(&archived, SECRET),
        "the machine's file got into the archive"
    );
}

#[test]
fn identity_files_behind_a_link_out_of_the_root_are_the_roots() {
    let env = TestEnv::new();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n");
    let machine = env.dir.path().join("machine-vmware");
    fs::create_dir_all(&machine).unwrap();
    fs::write(
        machine.join("esx.conf"),
        "/adv/Misc/HostName = \"machine\"\n",
    )
    .unwrap();
    symlink(&machine, env.path("etc/vmware")).unwrap();
    fs::write(env.path("etc/hostname"), "the-root\n").unwrap();
    let json = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(json["action"], "written");
    let listed = env.run(&["verify", "--json"]).ok().stdout;
    assert!(!listed.contains("machine"), "{listed}");
    let manifest = unpacked(&env.state("bootbank"));
    assert!(holds(&manifest, b"the-root") && !holds(&manifest, b"\"machine\""));
}

/// The image links of ESXi 6.7 (absolute, into the root's `/var/lib` and `/etc`), with files
/// behind them; the machine running the tests has neither target.
fn esxi67_root(env: &TestEnv) {
    let repo = "var/lib/sfcb/registration/repository";
    fs::create_dir_all(env.path(&format!("{repo}/root/interop"))).unwrap();
    fs::write(env.path(&format!("{repo}/root/interop/a.idx")), "old idx\n").unwrap();
    fs::create_dir_all(env.path("etc/sfcb")).unwrap();
    symlink(format!("/{repo}"), env.path("etc/sfcb/repository")).unwrap();
    fs::create_dir_all(env.path("etc/likewise/db")).unwrap();
    fs::write(env.path("etc/likewise/db/registry.db"), "old db\n").unwrap();
    fs::create_dir_all(env.path("etc/likewise/lib")).unwrap();
    symlink("/etc/likewise/db", env.path("etc/likewise/lib/db")).unwrap();
}

#[test]
fn a_restore_onto_an_esxi_67_root_writes_and_saves_through_its_absolute_links() {
    assert!(!Path::new("/var/lib/sfcb/registration/repository").exists());
    let env = TestEnv::new();
    esxi67_root(&env);
    let archive = packed(
        &env,
        "esx67.tgz",
        &[
            ("etc/sfcb/repository/root/interop/a.idx", "new idx\n"),
            ("etc/likewise/lib/db/registry.db", "new db\n"),
        ],
    );
    let undo = env.dir.path().join("undo67.tgz");
    env.run(&["restore", &archive, "--undo", undo.to_str().unwrap()])
        .ok();
    let repo = env.path("var/lib/sfcb/registration/repository/root/interop/a.idx");
    assert_eq!(fs::read(repo).unwrap(), b"new idx\n");
    assert_eq!(
        fs::read(env.path("etc/likewise/db/registry.db")).unwrap(),
        b"new db\n"
    );
    assert!(env
        .path("etc/sfcb/repository")
        .symlink_metadata()
        .unwrap()
        .is_symlink());
    let saved = unpacked(&undo);
    assert!(holds(&saved, b"old idx\n") && holds(&saved, b"old db\n"));
    // Restoring the undo archive brings the old files back, through the same links.
    env.run(&["restore", undo.to_str().unwrap(), "--force"])
        .ok();
    assert_eq!(
        fs::read(env.path("etc/likewise/db/registry.db")).unwrap(),
        b"old db\n"
    );
}

#[test]
fn a_diamond_of_directory_links_stops_at_the_walk_limit_within_seconds() {
    let env = TestEnv::new();
    // d0 .. d24: each level holds two links to the next one, so the paths double each level
    // (2^24 of them) with no loop anywhere.
    let depth = 24;
    for level in 0..=depth {
        fs::create_dir_all(env.path(&format!("etc/maze/d{level}"))).unwrap();
    }
    for level in 0..depth {
        for side in ["a", "b"] {
            let link = env.path(&format!("etc/maze/d{level}/{side}"));
            symlink(format!("/etc/maze/d{}", level + 1), link).unwrap();
        }
    }
    let started = Instant::now();
    let out = env.run(&["backup"]);
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("limit") || out.stderr.contains("visited"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("etc/maze"), "{}", out.stderr);
    eprintln!("diamond of depth {depth}: stopped after {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(!env.state("bootbank").exists());
}

#[test]
fn config_sizes_are_bounded_and_values_cut_in_messages() {
    let env = TestEnv::new();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n");
    let config = env.path("etc/statectl.toml");
    let repeated = format!("scan = [{}\"etc\"]\n", "\"etc\", ".repeat(20_000));
    fs::write(&config, repeated).unwrap();
    let started = Instant::now();
    env.run(&["backup"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let value = "v".repeat(900 << 10);
    fs::write(&config, format!("include = [\"/{value}\"]\n")).unwrap();
    let out = env.run(&["status"]).code(1);
    assert!(
        out.stderr.len() < 1000,
        "{} bytes of error",
        out.stderr.len()
    );
    fs::write(&config, format!("# {}\n", "x".repeat(1 << 20))).unwrap();
    let out = env.run(&["status"]).code(1);
    assert!(out.stderr.contains("1048576"), "{}", out.stderr);
}
