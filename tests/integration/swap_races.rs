//! Races against an attacker who keeps exchanging a directory of the root with a link out of
//! it (`renameat2(RENAME_EXCHANGE)` from a racing thread, [`Swapper`]), while `backup`, `diff`
//! and `restore` run 200 times each: no byte from outside the root gets into any archive, undo
//! archive or output. Each run may fail (exit 1: the file it selected changed), never leak.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::swapper::{holds, unpacked, Swapper};
use crate::testenv::{branch_of, TestEnv};

const SECRET: &[u8] = b"OUTSIDE-SECRET";
const ATTEMPTS: usize = 200;

/// A host whose `etc/vmware` holds flagged files, and a directory outside the root with the
/// same names (branches included) holding [`SECRET`], mirrored at the same absolute path inside
/// the root (so the link resolves within the root too); returns the host, the real directory
/// and an absolute link to the outside one beside it (the two names the attacker exchanges).
fn host_and_twin() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    let outside = env.dir.path().join("outside");
    let mirror = env.root.join(outside.strip_prefix("/").unwrap());
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&mirror).unwrap();
    for i in 0..20 {
        let rel = format!("etc/vmware/f{i:02}.conf");
        env.flagged(&rel, &format!("inside {i}\n"));
        let name = format!("f{i:02}.conf");
        for (dir, content) in [(&outside, SECRET), (&mirror, b"the root's mirror\n")] {
            fs::write(dir.join(&name), content).unwrap();
            fs::write(dir.join(format!(".#{name}")), content).unwrap();
        }
    }
    assert!(env.path(&branch_of("etc/vmware/f00.conf")).exists());
    let link = env.path("etc/vmware-swap");
    symlink(&outside, &link).unwrap();
    let dir = env.path("etc/vmware");
    (env, dir, link)
}

#[test]
fn backups_racing_a_directory_swapped_for_a_link_archive_no_outside_byte() {
    let (env, dir, link) = host_and_twin();
    let racer = Swapper::start(dir, link);
    let (mut written, mut failed) = (0, 0);
    for attempt in 0..ATTEMPTS {
        let out = env.run(&["backup", "--force", "--wait", "60"]);
        match out.code {
            0 => {
                written += 1;
                let archive = unpacked(&env.state("bootbank"));
                assert!(
                    !holds(&archive, SECRET),
                    "attempt {attempt}: outside bytes archived"
                );
            }
            1 => failed += 1,
            code => panic!("attempt {attempt}: exit {code}: {}", out.stderr),
        }
    }
    let swaps = racer.swaps();
    drop(racer);
    eprintln!("{ATTEMPTS} backups: {written} written, {failed} refused, {swaps} swaps");
    assert!(swaps > ATTEMPTS as u64, "the racer ran");
}

#[test]
fn diffs_racing_a_directory_or_a_file_swapped_for_a_link_print_no_outside_byte() {
    let (env, dir, link) = host_and_twin();
    env.run(&["backup"]).ok();
    for i in 0..20 {
        env.flagged(
            &format!("etc/vmware/f{i:02}.conf"),
            &format!("inside {i} v2\n"),
        );
    }
    let racer = Swapper::start(dir, link);
    diffs_show_nothing_outside(&env);
    drop(racer);
    // The file itself swapped for a link to a secret (and to /dev/zero): never followed.
    let file = env.path("etc/vmware/f00.conf");
    let secret_link = env.path("etc/vmware/f00.lnk");
    symlink(env.dir.path().join("outside/f01.conf"), &secret_link).unwrap();
    let racer = Swapper::start(file.clone(), secret_link);
    diffs_show_nothing_outside(&env);
    drop(racer);
    let zero_link = env.path("etc/vmware/f00.zero");
    symlink("/dev/zero", &zero_link).unwrap();
    let racer = Swapper::start(file, zero_link);
    for attempt in 0..ATTEMPTS / 4 {
        let out = env.run(&["diff"]);
        assert!(matches!(out.code, 1 | 3), "attempt {attempt}: {out:?}");
        assert!(
            out.stdout.len() < 64 << 10,
            "attempt {attempt}: {} bytes",
            out.stdout.len()
        );
    }
    drop(racer);
}

/// Runs `diff` [`ATTEMPTS`] times while a swapper races: each exits 1 or 3 and never prints
/// a byte of the outside file.
fn diffs_show_nothing_outside(env: &TestEnv) {
    for attempt in 0..ATTEMPTS {
        let out = env.run(&["diff"]);
        assert!(matches!(out.code, 1 | 3), "attempt {attempt}: {out:?}");
        assert!(
            !out.stdout.contains("OUTSIDE"),
            "attempt {attempt}: {}",
            out.stdout
        );
    }
}

#[test]
fn restores_racing_a_directory_swapped_for_a_link_save_no_outside_byte() {
    let (env, dir, link) = host_and_twin();
    env.run(&["backup"]).ok();
    let archive = env.dir.path().join("a.tgz");
    fs::copy(env.state("bootbank"), &archive).unwrap();
    for i in 0..20 {
        env.flagged(
            &format!("etc/vmware/f{i:02}.conf"),
            &format!("changed {i}\n"),
        );
    }
    let racer = Swapper::start(dir, link);
    let mut saved = 0;
    for attempt in 0..ATTEMPTS {
        let undo = env.dir.path().join(format!("undo-{attempt}.tgz"));
        let out = env.run(&[
            "restore",
            archive.to_str().unwrap(),
            "--undo",
            undo.to_str().unwrap(),
        ]);
        assert!(matches!(out.code, 0 | 1), "attempt {attempt}: {out:?}");
        if undo.exists() {
            saved += 1;
            assert!(
                !holds(&unpacked(&undo), SECRET),
                "attempt {attempt}: outside bytes saved"
            );
        }
        let outside = env.dir.path().join("outside/f00.conf");
        assert_eq!(
            fs::read(outside).unwrap(),
            SECRET,
            "attempt {attempt}: outside written"
        );
    }
    drop(racer);
    eprintln!("{ATTEMPTS} restores: {saved} undo archives");
}
