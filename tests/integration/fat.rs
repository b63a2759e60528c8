//! A real FAT16 bank, as on an ESXi boot device: a 250 MiB image made with `mkfs.vfat -F 16`,
//! mounted with `fusefat -s -o rw+` (no kernel vfat driver here), one per bank as on an ESXi
//! boot device. Backup, status, verify, `bank status` and restore work on them and `fsck.vfat -n`
//! finds both volumes clean afterwards (the kill sweep on them is `sweep::fat`).
//! Needs fusefat, dosfstools and /dev/fuse (ignored otherwise).
//!
//! fusefat renames over an existing file (one FUSE request, so a killed statectl never sees
//! half of it) by writing the directory in steps: mark the target's entry deleted, mark the
//! source's entry deleted, write the new entry. It also returns wrong bytes when a file is
//! read back through the descriptor that wrote it (so `copy_verified` reopens). See README
//! "Crash safety".

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sweep::scene;
use crate::testenv::{require, sh};

/// A mounted FAT16 image; unmounted (and the daemon reaped) on drop.
pub(crate) struct FatVolume {
    image: PathBuf,
    mount: PathBuf,
    daemon: Option<Child>,
}

impl FatVolume {
    /// `DIR/NAME.img`, mounted on `DIR/NAME`.
    fn new(dir: &Path, name: &str) -> FatVolume {
        let image = dir.join(format!("{name}.img"));
        let mount = dir.join(name);
        std::fs::create_dir_all(&mount).unwrap();
        sh(
            dir,
            &format!("truncate -s 250M {name}.img && mkfs.vfat -F 16 {name}.img >/dev/null"),
        );
        let daemon = Command::new("fusefat")
            .args(["-f", "-s", "-o", "rw+"])
            .arg(&image)
            .arg(&mount)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run fusefat");
        let volume = FatVolume {
            image,
            mount,
            daemon: Some(daemon),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !volume.mounted() {
            assert!(Instant::now() < deadline, "fusefat did not mount");
            std::thread::sleep(Duration::from_millis(20));
        }
        volume
    }

    fn mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let target = self.mount.display().to_string();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(target.as_str()))
    }

    /// Unmounts, waits for the daemon to finish writing the image, and runs `fsck.vfat -n`:
    /// its output, as an error when it found problems.
    fn unmount_and_fsck(mut self) -> Result<String, String> {
        self.unmount();
        let out = Command::new("fsck.vfat")
            .arg("-n")
            .arg(&self.image)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    fn unmount(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = Command::new("umount").arg(&self.mount).status();
            let _ = daemon.wait();
        }
    }
}

impl Drop for FatVolume {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Fails the test unless FAT16 volumes can be made and mounted here.
pub(crate) fn require_fat() {
    for tool in ["/dev/fuse", "fusefat", "mkfs.vfat", "fsck.vfat"] {
        require(tool);
    }
}

/// Both banks, each on its own FAT16 volume and at its root, as on an ESXi boot device
/// (partitions 5 and 6).
pub(crate) fn fat_banks(dir: &Path) -> [FatVolume; 2] {
    [
        FatVolume::new(dir, "bootbank"),
        FatVolume::new(dir, "altbootbank"),
    ]
}

pub(crate) fn fat_scene(volumes: &[FatVolume; 2]) -> crate::sweep::Scene {
    scene(Some((&volumes[0].mount, &volumes[1].mount)))
}

#[test]
#[ignore = "needs /dev/fuse, fusefat and dosfstools (.ci/run installs them)"]
fn backup_status_verify_bank_status_and_restore_work_on_fat16_banks() {
    require_fat();
    let dir = tempfile::tempdir().unwrap();
    let volumes = fat_banks(dir.path());
    let scene = fat_scene(&volumes);
    let (boot, alt) = (
        scene.banks[0].display().to_string(),
        scene.banks[1].display().to_string(),
    );
    let banks = ["--bootbank", &boot, "--altbootbank", &alt];
    scene.check_recovers("a clean backup on FAT16");
    scene.env.run(&[&banks[..], &["status"]].concat()).ok();
    let status = scene
        .env
        .run(&[&banks[..], &["--json", "bank", "status"]].concat());
    let status = status.ok().json();
    assert_eq!(status["next_boot"], "altbootbank", "{status}");
    scene.env.run(&[&banks[..], &["verify"]].concat()).ok();
    for bank in &scene.banks {
        let archive = bank.join("state.tgz").display().to_string();
        scene.env.run(&["verify", &archive]).ok();
    }
    // restore reads the FAT bank's archive and brings back a file lost on the host.
    let hosts = scene.env.read("etc/hosts");
    std::fs::remove_file(scene.env.path("etc/hosts")).unwrap();
    scene.env.run(&[&banks[..], &["restore"]].concat()).ok();
    assert_eq!(scene.env.read("etc/hosts"), hosts);
    assert_fsck_clean(
        volumes,
        "after backup, status, verify, bank status and restore",
    );
}

/// Unmounts both volumes and asserts `fsck.vfat -n` finds each clean.
#[track_caller]
pub(crate) fn assert_fsck_clean(volumes: [FatVolume; 2], when: &str) {
    for volume in volumes {
        let image = volume.image.display().to_string();
        match volume.unmount_and_fsck() {
            Ok(text) => eprintln!("fsck.vfat -n {image} {when}: clean ({})", text.trim()),
            Err(text) => panic!("fsck.vfat -n {image} {when}: {}", text.trim()),
        }
    }
}

#[test]
#[ignore = "needs /dev/fuse, fusefat and dosfstools (.ci/run installs them)"]
fn names_differing_only_in_case_are_refused_before_extracting_onto_fat() {
    require_fat();
    let dir = tempfile::tempdir().unwrap();
    let volume = FatVolume::new(dir.path(), "stick");
    let env = crate::testenv::TestEnv::new();
    let inner = crate::testenv::gzip(&crate::testenv::tar_of(&[
        ("etc/Hosts", b"upper\n", 0o644),
        ("etc/hosts", b"lower\n", 0o644),
    ]));
    let state = crate::testenv::gzip(&crate::testenv::tar_of(&[("local.tgz", &inner, 0o600)]));
    let archive = dir.path().join("case.tgz");
    std::fs::write(&archive, state).unwrap();
    let archive = archive.to_str().unwrap();
    let out = volume.mount.join("x");
    let refused = env.run(&["extract", archive, "--to", out.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("etc/hosts") && refused.stderr.contains("case"),
        "{}",
        refused.stderr
    );
    assert!(!out.exists(), "extract wrote onto the FAT volume");
    let local = dir.path().join("local");
    env.run(&["extract", archive, "--to", local.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(local.join("etc/hosts")).unwrap(), b"lower\n");
    drop(volume);
}
