//! Hostile archives, built here from raw tar headers: every command that writes from an archive
//! refuses each one with exit 1, and nothing inside or outside the target changes.
//!
//! The corpus is a table of (name, archive bytes) and the commands a list of templates, so a
//! new writer joins with one line in [`COMMANDS`].

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::{write::GzEncoder, Compression};
use tar::EntryType;

use crate::testenv::{relative, TestEnv};

/// Commands run on every hostile archive; `{archive}` is its path, `{out}` a fresh directory
/// path that does not exist yet.
const COMMANDS: &[&[&str]] = &[
    &["restore", "{archive}"],
    &["install", "{archive}"],
    &["extract", "{archive}", "--to", "{out}"],
];

/// One raw tar member.
struct Member {
    name: Vec<u8>,
    kind: EntryType,
    mode: u32,
    data: Vec<u8>,
    link: Vec<u8>,
}

fn file(name: &str, data: &str) -> Member {
    Member {
        name: name.as_bytes().to_vec(),
        kind: EntryType::Regular,
        mode: 0o1644,
        data: data.as_bytes().to_vec(),
        link: Vec::new(),
    }
}

fn special(name: &str, kind: EntryType, link: &str) -> Member {
    Member {
        kind,
        mode: 0o777,
        data: Vec::new(),
        link: link.as_bytes().to_vec(),
        ..file(name, "")
    }
}

fn with_mode(mut member: Member, mode: u32) -> Member {
    member.mode = mode;
    member
}

/// A gzip'd tar of `members` with names and link names written raw (no path checks).
fn tar_gz(members: Vec<Member>) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for member in members {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..member.name.len()].copy_from_slice(&member.name);
            gnu.linkname[..member.link.len()].copy_from_slice(&member.link);
        }
        header.set_entry_type(member.kind);
        header.set_mode(member.mode);
        header.set_size(member.data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, member.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A `state.tgz` whose only outer member, named `outer`, holds `members` as `local.tgz`.
fn state_named(outer: &str, members: Vec<Member>) -> Vec<u8> {
    let inner = tar_gz(members);
    tar_gz(vec![Member {
        data: inner,
        mode: 0o600,
        ..file(outer, "")
    }])
}

fn state(members: Vec<Member>) -> Vec<u8> {
    state_named("local.tgz", members)
}

/// The corpus; `outside` is a directory beside the target holding `victim`.
fn corpus(outside: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let benign = || file("etc/benign", "harmless\n");
    let out_dir = outside.to_str().unwrap();
    let victim = outside.join("victim");
    let victim = victim.to_str().unwrap();
    let abs = format!("{out_dir}/planted");
    vec![
        ("absolute path", state(vec![benign(), file(&abs, "x")])),
        ("dot-dot", state(vec![benign(), file("../x", "x")])),
        (
            "inner dot-dot",
            state(vec![benign(), file("etc/../../x", "x")]),
        ),
        (
            "symlink then a file through it",
            state(vec![
                benign(),
                special("etc/link", EntryType::Symlink, out_dir),
                file("etc/link/planted", "x"),
            ]),
        ),
        (
            "hardlink to an outside file",
            state(vec![benign(), special("etc/hard", EntryType::Link, victim)]),
        ),
        (
            "char device",
            state(vec![benign(), special("etc/cdev", EntryType::Char, "")]),
        ),
        (
            "block device",
            state(vec![benign(), special("etc/bdev", EntryType::Block, "")]),
        ),
        (
            "fifo",
            state(vec![benign(), special("etc/fifo", EntryType::Fifo, "")]),
        ),
        (
            "setuid file",
            state(vec![benign(), with_mode(file("etc/suid", "x"), 0o4755)]),
        ),
        (
            "setgid file",
            state(vec![benign(), with_mode(file("etc/sgid", "x"), 0o2755)]),
        ),
        (
            "duplicate path",
            state(vec![benign(), file("etc/dup", "a"), file("etc/dup", "b")]),
        ),
        (
            "file and directory of one name",
            state(vec![
                benign(),
                file("etc/both", "a"),
                special("etc/both/", EntryType::Directory, ""),
            ]),
        ),
        (
            "file and a file below it",
            state(vec![
                benign(),
                file("etc/both", "a"),
                file("etc/both/x", "b"),
            ]),
        ),
        (
            "outer member ../local.tgz",
            state_named("../local.tgz", vec![benign()]),
        ),
        (
            "control character in a name",
            state(vec![benign(), file("etc/a\nb", "x")]),
        ),
        (
            "name that is not UTF-8",
            state(vec![
                benign(),
                Member {
                    name: b"etc/\xff".to_vec(),
                    ..file("", "x")
                },
            ]),
        ),
    ]
}

pub type Snapshot = Vec<(String, char, u32, u32, u32, i64, Vec<u8>)>;

/// Every entry under `dir` except the run directory: type, mode, owner, mtime, and content
/// (or link target). Directory mtimes catch files created and removed again.
pub fn snapshot(dir: &Path, run_dir: &Path) -> Snapshot {
    let mut entries: Snapshot = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.path() != run_dir)
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let kind = if meta.is_dir() {
                'd'
            } else if meta.file_type().is_symlink() {
                'l'
            } else {
                'f'
            };
            let content = match kind {
                'f' => fs::read(e.path()).unwrap(),
                'l' => fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
                _ => Vec::new(),
            };
            let rel = relative(dir, e.path());
            let mode = meta.permissions().mode();
            (
                rel,
                kind,
                mode,
                meta.uid(),
                meta.gid(),
                meta.mtime(),
                content,
            )
        })
        .collect();
    entries.sort();
    entries
}

/// A host with a saved archive, a directory beside its root with a victim file, and the
/// run directory already made.
fn target() -> (TestEnv, PathBuf) {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "victim\n").unwrap();
    (env, outside)
}

#[track_caller]
fn refused_without_a_trace(env: &TestEnv, args: &[&str], what: &str) {
    let before = snapshot(env.dir.path(), &env.run_dir);
    let out = env.run(args);
    assert_eq!(
        out.code,
        1,
        "{what}: `{}` exit {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.starts_with("statectl: error: "),
        "{what}: {}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
    assert_eq!(
        snapshot(env.dir.path(), &env.run_dir),
        before,
        "{what}: `{}` changed something",
        args.join(" ")
    );
}

#[test]
fn every_hostile_archive_is_refused_by_every_writer_leaving_no_trace() {
    let (env, outside) = target();
    let cases = corpus(&outside);
    assert!(cases.len() >= 14);
    for (index, (name, bytes)) in cases.into_iter().enumerate() {
        let archive = env.dir.path().join(format!("hostile-{index}.tgz"));
        fs::write(&archive, bytes).unwrap();
        let out = env.dir.path().join(format!("out-{index}"));
        for template in COMMANDS {
            let args: Vec<String> = template
                .iter()
                .map(|arg| {
                    arg.replace("{archive}", archive.to_str().unwrap())
                        .replace("{out}", out.to_str().unwrap())
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            refused_without_a_trace(&env, &args, name);
        }
    }
}

#[test]
fn a_symlink_already_in_the_target_is_never_written_through() {
    let old = TestEnv::esxi();
    old.run(&["backup"]).ok();
    let archive = old.state("bootbank");
    let archive = archive.to_str().unwrap();
    for (link, points_to) in [("etc/vmware", "outside"), ("etc/hosts", "outside/victim")] {
        let (env, outside) = target();
        fs::remove_dir_all(env.path("etc")).unwrap();
        fs::create_dir(env.path("etc")).unwrap();
        std::os::unix::fs::symlink(env.dir.path().join(points_to), env.path(link)).unwrap();
        refused_without_a_trace(&env, &["restore", archive], link);
        refused_without_a_trace(&env, &["restore", archive, "--dry-run"], link);
        let err = env.run(&["restore", archive]);
        assert!(
            err.stderr.contains(link) && err.stderr.contains("symlink"),
            "{}",
            err.stderr
        );
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    }
}

#[test]
fn a_two_step_attack_fails_at_its_first_step() {
    let (env, outside) = target();
    let plant = env.dir.path().join("plant.tgz");
    let out_dir = outside.to_str().unwrap();
    fs::write(
        &plant,
        state(vec![special("etc/vmware", EntryType::Symlink, out_dir)]),
    )
    .unwrap();
    refused_without_a_trace(&env, &["restore", plant.to_str().unwrap()], "plant a link");
    let through = env.dir.path().join("through.tgz");
    fs::write(&through, state(vec![file("etc/vmware/pwned", "x")])).unwrap();
    env.run(&["restore", through.to_str().unwrap()]).ok();
    assert!(fs::symlink_metadata(env.path("etc/vmware"))
        .unwrap()
        .is_dir());
    assert!(env.path("etc/vmware/pwned").is_file());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "written outside"
    );
}
