//! A property test of the in-root walk ([`crate::fs::walk`], through [`crate::fs::hostfile::RootReader`]):
//! random trees of files, directories and links (absolute and relative, up and out, into each
//! other and in loops), beside an "outside" tree of the same shape, looked up by random paths.
//! Whatever resolves, resolves to a file inside the root: never to one of the outside tree, and
//! never by panicking or hanging.

use std::collections::HashSet;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use crate::fs::hostfile::RootReader;

/// A small deterministic generator (xorshift64*): the same seed, the same trees.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: [&str; 5] = ["a", "b", "c", "etc", "var"];

/// A random link target: relative (maybe climbing), absolute within the root's namespace, the
/// outside tree's real absolute path, or a loop back up.
fn target(rng: &mut Rng, outside: &Path) -> PathBuf {
    let mut path = match rng.below(4) {
        0 => PathBuf::from("/"),
        1 => outside.to_path_buf(),
        _ => PathBuf::new(),
    };
    for _ in 0..rng.below(4) + 1 {
        let part = match rng.below(6) {
            0 => "..",
            1 => ".",
            _ => rng.pick(&NAMES),
        };
        path.push(part);
    }
    path
}

/// Fills `dir` with a random tree (depth at most 3); links are made in `links_too` only.
fn grow(rng: &mut Rng, dir: &Path, depth: usize, outside: &Path, links_too: bool) {
    for name in NAMES {
        let path = dir.join(name);
        match rng.below(if links_too { 4 } else { 3 }) {
            0 if depth < 3 => {
                std::fs::create_dir(&path).unwrap();
                grow(rng, &path, depth + 1, outside, links_too);
            }
            1 => std::fs::write(&path, name).unwrap(),
            3 => symlink(target(rng, outside), &path).unwrap(),
            _ => {}
        }
    }
}

/// (device, inode) of everything under `dir`, links not followed.
fn inodes(dir: &Path) -> HashSet<(u64, u64)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.path().symlink_metadata().ok())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

#[test]
fn no_resolution_of_a_random_tree_leaves_the_root() {
    let mut opened = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let top = tempfile::tempdir().unwrap();
        let (root, outside) = (top.path().join("root"), top.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // The outside tree is full of files where links from the root might lead.
        grow(&mut rng, &outside, 0, &outside, false);
        for name in NAMES {
            let _ = std::fs::write(outside.join(name), "outside");
        }
        grow(&mut rng, &root, 0, &outside, true);
        let (inside, outer) = (inodes(&root), inodes(&outside));
        let reader = RootReader::open(&root).unwrap();
        for _ in 0..300 {
            let mut rel = PathBuf::new();
            for _ in 0..rng.below(5) + 1 {
                rel.push(rng.pick(&[NAMES.as_slice(), &[".."]].concat()));
            }
            if let Ok(Some((_, meta))) = reader.open_file(&rel) {
                let id = (meta.dev(), meta.ino());
                assert!(
                    !outer.contains(&id),
                    "seed {seed}: `{}` left the root",
                    rel.display()
                );
                assert!(
                    inside.contains(&id),
                    "seed {seed}: `{}` is no root file",
                    rel.display()
                );
                opened += 1;
            }
        }
    }
    assert!(opened > 100, "the trees resolve some paths: {opened}");
}
