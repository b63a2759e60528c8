//! Tests of the in-root walk ([`crate::fs::walk`]) through the placer that writes with it: a
//! directory symlink resolves inside the root, `..` stops at the root, a missing target creates
//! nothing and a link loop is refused. They live here, not beside the walk, because the walk is
//! a leaf that must not import restore.

use super::{FileMeta, Placer};
use std::os::unix::fs::symlink;

const META: FileMeta = FileMeta {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_600_000_000,
};

#[test]
fn an_absolute_link_resolves_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("var/lib/repo")).unwrap();
    std::fs::create_dir_all(r.join("etc/sfcb")).unwrap();
    symlink("/var/lib/repo", r.join("etc/sfcb/repository")).unwrap();
    let placer = Placer::open(r).unwrap();
    placer
        .place("etc/sfcb/repository/root/x.idx", &mut &b"cim"[..], &META)
        .unwrap();
    assert_eq!(
        std::fs::read(r.join("var/lib/repo/root/x.idx")).unwrap(),
        b"cim"
    );
    assert!(placer.is_directory("etc/sfcb/repository").unwrap());
}

#[test]
fn dotdot_stops_at_the_root_and_a_missing_target_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().join("root");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("data")).unwrap();
    symlink("../../../../../data", r.join("etc/up")).unwrap();
    symlink("../../gone/dir", r.join("etc/dangling")).unwrap();
    let placer = Placer::open(&r).unwrap();
    placer.place("etc/up/f", &mut &b"in"[..], &META).unwrap();
    assert_eq!(std::fs::read(r.join("data/f")).unwrap(), b"in");
    let err = placer
        .place("etc/dangling/f", &mut &b"x"[..], &META)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("does not exist inside the root"),
        "{err:#}"
    );
    assert!(placer.existing("etc/dangling/f").is_err());
    assert!(!r.join("gone").exists());
    assert!(!root.path().join("gone").exists());
}

#[test]
fn a_link_loop_is_refused() {
    let root = tempfile::tempdir().unwrap();
    symlink("b", root.path().join("a")).unwrap();
    symlink("a", root.path().join("b")).unwrap();
    let placer = Placer::open(root.path()).unwrap();
    let err = placer.place("a/f", &mut &b"x"[..], &META).unwrap_err();
    assert!(format!("{err:#}").contains("too many levels"), "{err:#}");
}
