//! Reader/writer agreement at the limits: a selection whose paths pass the name bytes every
//! reader keeps (24 MiB) is refused by the writer, naming the limit, so statectl never writes
//! an archive its readers refuse. (That every reader reads 100,000 files of 200-byte paths in
//! under 64 MiB is measured in release builds by the benchmark: `benches/contract/scale/`
//! `long_paths.rs`, `scripts/bench.sh --scale-only --long-paths --scale-sizes ''`.)

use std::fs;

use crate::testenv::TestEnv;

#[test]
fn pack_refuses_paths_past_the_readers_cap_naming_it() {
    let env = TestEnv::new();
    let tree = env.dir.path().join("tree");
    // 7,000 paths of 4,000 bytes: 28 MB of names, over the 24 MiB every reader keeps.
    for i in 0..7_000 {
        let dirs = format!("etc/{}/", vec!["q".repeat(250); 15].join("/"));
        let name = format!("{dirs}{i:05}{}", "n".repeat(4_000 - dirs.len() - 5));
        if i == 0 {
            fs::create_dir_all(tree.join(&dirs)).unwrap();
        }
        fs::write(tree.join(name), b"").unwrap();
    }
    let archive = env.dir.path().join("too-long.tgz");
    let (t, a) = (tree.to_str().unwrap(), archive.to_str().unwrap());
    let out = env.run(&["pack", t, "--output", a]).code(1);
    assert!(out.stderr.contains("byte limit"), "{}", out.stderr);
    assert!(!archive.exists());
}
