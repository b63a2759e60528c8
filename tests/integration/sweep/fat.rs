//! The kill sweep of `crash` on real FAT16 banks (`fat`: one fusefat-mounted `mkfs.vfat -F 16`
//! image per bank): after every kill each bank holds the old or the new archive, the next run
//! recovers, and `fsck.vfat -n` finds both volumes clean. Needs fusefat, dosfstools and
//! /dev/fuse (ignored otherwise).

use crate::fat::{assert_fsck_clean, fat_banks, fat_scene, require_fat};
use crate::sweep::crash::kill_sweep;

#[test]
#[ignore = "needs /dev/fuse, fusefat and dosfstools (.ci/run installs them)"]
fn the_kill_sweep_holds_on_a_fat16_bank() {
    require_fat();
    let dir = tempfile::tempdir().unwrap();
    let volumes = fat_banks(dir.path());
    let scene = fat_scene(&volumes);
    let points = kill_sweep(&scene);
    let total: usize = points.iter().map(|p| p.1).sum();
    eprintln!("kill sweep (FAT16 via fusefat): {total} injection points {points:?}");
    assert!(total > 50, "{points:?}");
    scene.check_recovers("after the sweep");
    drop(scene);
    assert_fsck_clean(volumes, "after the sweep");
}
