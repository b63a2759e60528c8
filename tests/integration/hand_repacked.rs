//! The classic hand edit, by GNU tar and by busybox tar: extract both members of a statectl
//! archive, edit a file, tar them again with or without `statectl.json` (issue 21). Every reader
//! accepts the result; a manifest left stale is set aside with one warning naming the first
//! mismatch and the fix, and `backup` over it writes a fresh archive once.

use std::fs;

use crate::testenv::{installed, sh, Outcome, TestEnv, MTIME};

/// The tar commands to repack with: GNU tar, and busybox tar where installed.
fn tools() -> Vec<&'static str> {
    let mut tools = vec!["tar"];
    if installed("busybox") {
        tools.push("busybox tar");
    }
    tools
}

/// Repacks the bootbank's archive of `env` with `tool` as an admin would, with `etc/hosts`
/// holding `hosts` (same mtime), into `<tmp>/name`; with `manifest`, the old statectl.json
/// goes back in.
fn repack(env: &TestEnv, tool: &str, hosts: &str, manifest: bool, name: &str) -> String {
    let work = env.dir.path().join(format!("work-{name}"));
    fs::create_dir(&work).unwrap();
    let state = env.state("bootbank");
    let script = format!(
        "{tool} -xzf '{state}' && mkdir tree && {tool} -C tree -xzf local.tgz && \
         printf '{hosts}' > tree/etc/hosts && touch -d @{MTIME} tree/etc/hosts && \
         rm local.tgz && (cd tree && {tool} -czf ../local.tgz etc) && \
         {tool} -czf ../{name} local.tgz {members}",
        state = state.display(),
        members = if manifest { "statectl.json" } else { "" },
    );
    sh(&work, &script);
    env.dir.path().join(name).to_str().unwrap().to_string()
}

/// Lines of `text` saying the manifest was set aside.
fn stale_in(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("statectl.json does not match local.tgz"))
        .count()
}

/// Such lines of a run without `--json` (`verify` lists its problems on stdout).
fn stale_warnings(out: &Outcome) -> usize {
    stale_in(&out.stderr) + stale_in(&out.stdout)
}

#[test]
fn a_hand_repacked_archive_is_read_by_every_reader_with_one_warning() {
    for (i, tool) in tools().into_iter().enumerate() {
        for manifest in [true, false] {
            let env = TestEnv::esxi();
            env.run(&["backup"]).ok();
            let name = format!("edited-{i}-{manifest}.tgz");
            let archive = repack(&env, tool, "10.0.0.9 edited\\n", manifest, &name);
            let want = usize::from(manifest);
            let to = env.dir.path().join(format!("x-{i}"));
            let runs: [Vec<&str>; 5] = [
                vec!["list", &archive],
                vec!["verify", &archive],
                vec!["extract", &archive, "--to", to.to_str().unwrap()],
                vec!["restore", &archive, "--dry-run"],
                vec!["passwd", "root", "--clear", "--archive", &archive],
            ];
            for args in runs {
                let out = env.run(&args).ok();
                assert_eq!(
                    stale_warnings(&out),
                    want,
                    "{tool} {args:?}: {}",
                    out.stderr
                );
                if manifest {
                    let mut lines = out.stderr.lines().chain(out.stdout.lines());
                    let line = lines.find(|l| l.contains("does not match")).unwrap();
                    assert!(line.contains("`etc/hosts`"), "the first mismatch: {line}");
                    assert!(line.contains("statectl pack"), "the fix: {line}");
                }
            }
            let json = env.run(&["verify", &archive, "--json"]).ok().json();
            assert_eq!(json["ok"], true, "{tool}");
            assert_eq!(
                fs::read(to.join("etc/hosts")).unwrap(),
                b"10.0.0.9 edited\n"
            );
        }
    }
}

#[test]
fn backup_over_a_stale_manifest_writes_a_fresh_archive_once() {
    for (i, tool) in tools().into_iter().enumerate() {
        let env = TestEnv::esxi();
        env.run(&["backup"]).ok();
        // The host's file already holds the edit: only the manifest is out of date.
        env.flagged("etc/hosts", "10.0.0.9 edited\n");
        let name = format!("edited-{i}.tgz");
        let archive = repack(&env, tool, "10.0.0.9 edited\\n", true, &name);
        fs::copy(&archive, env.state("bootbank")).unwrap();
        let status = env.run(&["status", "--json"]).ok();
        assert_eq!(stale_in(&status.stderr), 1, "{tool}: {}", status.stderr);
        assert!(status.json()["modified"].as_array().unwrap().is_empty());
        let first = env.run(&["backup", "--json"]).ok();
        assert_eq!(first.json()["action"], "written", "{tool}");
        assert_eq!(stale_in(&first.stderr), 1, "{tool}: {}", first.stderr);
        assert!(
            first.stderr.contains("writing a fresh archive"),
            "{}",
            first.stderr
        );
        let again = env.run(&["backup", "--json"]).ok();
        assert_eq!(again.json()["action"], "unchanged", "{tool}");
        assert_eq!(again.stderr, "", "{tool}: the warning is gone");
        let verify = env.run(&["verify"]).ok();
        assert_eq!(stale_warnings(&verify), 0);
    }
}
