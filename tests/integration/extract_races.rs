//! `extract --to DIR` against the owner of DIR's parent, racing from a thread 300 times each:
//! exchanging DIR (with `--force`) for a link to a directory of root's, and exchanging extract's
//! own temp directory for one of theirs. No chmod lands outside DIR, and an extract that exits
//! 0 leaves DIR the private directory it filled, never someone else's.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::swapper::{exchange, Swapper};
use crate::testenv::TestEnv;

const ATTEMPTS: usize = 300;

/// A host with a backed-up archive; returns it and the archive's path.
fn archived() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n");
    env.run(&["backup"]).ok();
    let archive = env.state("bootbank").display().to_string();
    (env, archive)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn extract_force_never_chmods_what_a_swapped_link_points_to() {
    let (env, archive) = archived();
    let parent = env.dir.path().join("theirs");
    let dir = parent.join("out");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("keep"), "x").unwrap();
    let victim = env.dir.path().join("victim");
    fs::create_dir_all(&victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
    let link = parent.join("out-link");
    symlink(&victim, &link).unwrap();
    let racer = Swapper::start(dir.clone(), link);
    let mut extracted = 0;
    for attempt in 0..ATTEMPTS {
        let out = env.run(&[
            "extract",
            &archive,
            "--to",
            dir.to_str().unwrap(),
            "--force",
        ]);
        assert!(matches!(out.code, 0 | 1), "attempt {attempt}: {out:?}");
        extracted += usize::from(out.code == 0);
        assert_eq!(
            mode(&victim),
            0o755,
            "attempt {attempt}: the link's target was chmodded"
        );
        assert!(
            !victim.join("etc").exists(),
            "attempt {attempt}: extracted through the link"
        );
    }
    drop(racer);
    eprintln!("{ATTEMPTS} forced extracts: {extracted} done");
}

/// Exchanges every statectl temp directory that appears in `parent` with `theirs`, until
/// `stop`; `theirs` is made again (0755, another owner where we can) after each exchange.
fn swap_temps(parent: PathBuf, theirs: PathBuf, stop: Arc<AtomicBool>) {
    let junk = theirs.with_extension("junk");
    fs::create_dir_all(&junk).unwrap();
    let mut moved = 0;
    let mut make_theirs = |path: &Path| {
        // What was swapped out (extract's temp directory, maybe still being filled) is moved
        // aside, not removed under its writer.
        moved += 1;
        let _ = fs::rename(path, junk.join(moved.to_string()));
        fs::create_dir(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::os::unix::fs::chown(path, Some(12345), Some(12345));
    };
    make_theirs(&theirs);
    while !stop.load(Ordering::Relaxed) {
        let Ok(listing) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".statectl-") && exchange(&entry.path(), &theirs).is_ok() {
                make_theirs(&theirs);
            }
        }
    }
}

#[test]
fn an_extract_that_succeeds_leaves_dir_its_own_private_directory() {
    let (env, archive) = archived();
    let parent = env.dir.path().join("theirs");
    fs::create_dir_all(&parent).unwrap();
    let dir = parent.join("out");
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (parent, theirs, stop) = (parent.clone(), env.dir.path().join("x"), Arc::clone(&stop));
        std::thread::spawn(move || swap_temps(parent, theirs, stop))
    };
    let mut done = 0;
    for attempt in 0..ATTEMPTS {
        let out = env.run(&["extract", &archive, "--to", dir.to_str().unwrap()]);
        assert!(matches!(out.code, 0 | 1), "attempt {attempt}: {out:?}");
        if out.code == 0 {
            done += 1;
            let meta = fs::symlink_metadata(&dir).unwrap();
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            assert!(
                meta.is_dir() && meta.uid() == me,
                "attempt {attempt}: {meta:?}"
            );
            assert_eq!(meta.mode() & 0o777, 0o700, "attempt {attempt}");
            assert!(
                dir.join("etc/hosts").exists(),
                "attempt {attempt}: DIR is empty"
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    eprintln!("{ATTEMPTS} extracts against a temp-directory swapper: {done} done");
}
