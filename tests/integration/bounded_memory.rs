//! Untrusted archives at any size (docs/reference.md "Limits", "Guarantees"): each
//! class of hostile input is built once, every archive-reading command runs on it under GNU
//! time, and each stays under 64 MiB of peak RSS; every refusal exits 1 with one line naming
//! the archive and the member, and leaves the host tree (root and banks) byte-identical and no
//! extract directory behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use tar::EntryType;

use crate::archive_commands::peak_rss_kib;
use crate::bounded_memory_inputs::{
    add, finish, gz_tar, header, long_names, manifest, many_entries, one_file, outer, pax_sparse,
    small, two_members,
};
use crate::refusals_change_nothing::snapshot;
use crate::testenv::{gzip, require, Outcome, TestEnv};

const LIMIT_KIB: i64 = 64 * 1024;

/// Every archive-reading command; `{a}` is the archive, `{out}` a directory that does not exist.
const COMMANDS: &[&[&str]] = &[
    &["list", "{a}"],
    &["verify", "{a}"],
    &["status"],
    &["extract", "{a}", "--to", "{out}"],
    &["restore", "--dry-run", "{a}"],
    &["restore", "{a}"],
    &["install", "--force", "{a}"],
];

/// The refused classes: (what, archive bytes, a member the refusal must name).
fn refused_classes() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let component = format!("etc/{}", "c".repeat(300));
    let inner = gzip(&crate::testenv::tar_of(&[("etc/hosts", b"x", 0o644)]));
    let one = manifest(&["etc/hosts".to_string()], "esx01");
    let lying = manifest(&["etc/other".to_string()], "esx01");
    vec![
        ("8,000 names of 60 KB", long_names(8000), "etc/00000xxxx"),
        (
            "100,000 entries, a directory below a file last",
            many_entries(99_999, &[("etc/d000/f000000/x/", EntryType::Directory)]),
            "etc/d000/f000000",
        ),
        (
            "a 40 MiB host name in the manifest",
            outer(&[
                ("local.tgz", &inner),
                (
                    "statectl.json",
                    &manifest(&["etc/hosts".to_string()], &"h".repeat(40 << 20)),
                ),
            ]),
            "statectl.json",
        ),
        (
            "a file, then a directory below it",
            small(&[
                ("etc/a", EntryType::Regular),
                ("etc/a/b/", EntryType::Directory),
            ]),
            "etc/a",
        ),
        (
            "a 300-byte name component",
            small(&[(component.as_str(), EntryType::Regular)]),
            "etc/cccc",
        ),
        (
            "a GNU sparse member",
            small(&[("etc/sparse", EntryType::GNUSparse)]),
            "etc/sparse",
        ),
        ("a PAX sparse member", pax_sparse(), "etc/sparse"),
        (
            "two manifests, a lying one first",
            outer(&[
                ("statectl.json", &lying),
                ("local.tgz", &inner),
                ("statectl.json", &one),
            ]),
            "statectl.json",
        ),
        (
            "two local.tgz",
            outer(&[("local.tgz", &inner), ("local.tgz", &inner)]),
            "local.tgz",
        ),
    ]
}

/// Runs `template` on `archive`; status reads `status_env`'s bootbank, which holds it.
fn run(env: &TestEnv, status_env: &TestEnv, template: &[&str], archive: &Path) -> (Outcome, i64) {
    let out = env.dir.path().join("out");
    let args: Vec<String> = template
        .iter()
        .map(|a| {
            a.replace("{a}", archive.to_str().unwrap())
                .replace("{out}", out.to_str().unwrap())
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let which = if template[0] == "status" {
        status_env
    } else {
        env
    };
    peak_rss_kib(which, &args)
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn every_hostile_class_is_refused_by_every_writer_and_reader_in_bounded_memory_leaving_no_trace() {
    require("/usr/bin/time");
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let status_env = TestEnv::new();
    for (what, bytes, member) in refused_classes() {
        let archive = env.dir.path().join("hostile.tgz");
        fs::write(&archive, &bytes).unwrap();
        fs::write(status_env.state("bootbank"), &bytes).unwrap();
        let mut figures = Vec::new();
        for template in COMMANDS {
            let before = snapshot(&env.root, &env.run_dir);
            let (out, kib) = run(&env, &status_env, template, &archive);
            figures.push(format!(
                "{} {kib}",
                template[..template.len().min(2)].join(" ")
            ));
            if template[0] == "status" {
                assert!(kib < LIMIT_KIB, "{what}: `status` took {kib} KiB");
                continue; // reports, writes nothing to the host
            }
            assert!(
                kib < LIMIT_KIB,
                "{what}: `{}` took {kib} KiB",
                template.join(" ")
            );
            assert_eq!(
                out.code,
                1,
                "{what}: `{}`: {}",
                template.join(" "),
                out.stderr
            );
            assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
            let line = &out.stderr;
            assert!(
                line.contains("hostile.tgz") && line.contains(member),
                "{what}: `{}` does not name the archive and `{member}`: {line}",
                template.join(" ")
            );
            assert!(
                out.stdout.is_empty() || template[0] == "verify",
                "{what}: {}",
                out.stdout
            );
            assert!(
                snapshot(&env.root, &env.run_dir) == before && !env.dir.path().join("out").exists(),
                "{what}: `{}` changed the tree",
                template.join(" ")
            );
        }
        eprintln!("peak RSS KiB, {what}: {}", figures.join(", "));
    }
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn a_hundred_thousand_entries_are_read_in_bounded_memory() {
    require("/usr/bin/time");
    let env = TestEnv::new();
    let status_env = TestEnv::new();
    let bytes = many_entries(100_000, &[]);
    let archive = env.dir.path().join("many.tgz");
    fs::write(&archive, &bytes).unwrap();
    fs::write(status_env.state("bootbank"), &bytes).unwrap();
    let mut figures = Vec::new();
    for template in [COMMANDS[0], COMMANDS[1], COMMANDS[4], COMMANDS[2]] {
        let (out, kib) = run(&env, &status_env, template, &archive);
        let expected = if template[0] == "status" { 3 } else { 0 };
        assert_eq!(
            out.code,
            expected,
            "`{}`: {}",
            template.join(" "),
            out.stderr
        );
        figures.push(format!(
            "{} {kib}",
            template[..template.len().min(2)].join(" ")
        ));
        assert!(kib < LIMIT_KIB, "`{}` took {kib} KiB", template.join(" "));
    }
    let listed = run(&env, &status_env, COMMANDS[0], &archive).0.stdout;
    assert_eq!(listed.lines().count(), 100_000);
    eprintln!("peak RSS KiB, 100,000 entries: {}", figures.join(", "));
}

#[test]
fn list_of_a_refused_archive_exits_1_and_partial_lists_what_it_read_first() {
    let env = TestEnv::new();
    let archive = env.dir.path().join("bad.tgz");
    let bytes = small(&[
        ("etc/good", EntryType::Regular),
        ("etc/link", EntryType::Symlink),
    ]);
    fs::write(&archive, bytes).unwrap();
    let path = archive.to_str().unwrap();
    let out = env.run(&["list", path]).code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains(path) && out.stderr.contains("etc/link"),
        "{}",
        out.stderr
    );
    let out = env.run(&["list", "--partial", path]).code(1);
    assert_eq!(out.stdout, "etc/good\n");
    let truncated = {
        let mut builder = gz_tar();
        add(&mut builder, "etc/first", EntryType::Regular, b"1");
        let inner = finish(builder);
        let whole = outer(&[("local.tgz", &inner)]);
        whole[..whole.len() - 30].to_vec()
    };
    fs::write(&archive, truncated).unwrap();
    let out = env.run(&["list", "--partial", path]).code(1);
    assert!(out.stderr.contains(path), "{}", out.stderr);
}

#[test]
fn dot_entries_and_multi_member_gzip_in_both_layers_are_read_by_every_command() {
    let env = TestEnv::esxi();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, data) in [
        ("./", EntryType::Directory, &b""[..]),
        ("./etc/hosts", EntryType::Regular, b"127.0.0.1 restored\n"),
        (
            "./etc/vmware/esx.conf",
            EntryType::Regular,
            b"/system/uuid = \"5f1c-01\"\n",
        ),
    ] {
        let mut head = header(kind, data.len() as u64);
        tar.append_data(&mut head, name, data).unwrap();
    }
    let inner = two_members(&tar.into_inner().unwrap());
    let mut outer_tar = tar::Builder::new(Vec::new());
    let mut dot = header(EntryType::Directory, 0);
    outer_tar.append_data(&mut dot, "./", &b""[..]).unwrap();
    let mut head = header(EntryType::Regular, inner.len() as u64);
    outer_tar
        .append_data(&mut head, "./local.tgz", &inner[..])
        .unwrap();
    let state = two_members(&outer_tar.into_inner().unwrap());
    let archive = env.dir.path().join("dots.tgz");
    fs::File::create(&archive)
        .unwrap()
        .write_all(&state)
        .unwrap();
    let path = archive.to_str().unwrap();
    let out = env.run(&["list", path]).ok();
    assert_eq!(out.stdout, "etc/hosts\netc/vmware/esx.conf\n");
    env.run(&["verify", path]).ok();
    let dir = env.dir.path().join("x");
    env.run(&["extract", path, "--to", dir.to_str().unwrap()])
        .ok();
    assert_eq!(
        fs::read(dir.join("etc/hosts")).unwrap(),
        b"127.0.0.1 restored\n"
    );
    env.run(&["install", path]).ok();
    assert_eq!(fs::read(env.state("bootbank")).unwrap(), state);
}

#[test]
#[ignore = "needs strace (.ci/run installs it)"]
fn an_archive_rewritten_in_place_between_validation_and_write_gets_nothing_written() {
    require("strace");
    let env = TestEnv::new();
    let archive = env.dir.path().join("state.tgz");
    let (good, evil) = (one_file(0o755), one_file(0o4755));
    assert_eq!(good.len(), evil.len(), "the rewrite must keep the size");
    fs::write(&archive, &good).unwrap();
    let out = env.dir.path().join("x");
    let log = env.dir.path().join("strace.log");
    // Hold every rewind for 2 s (the one before the writing read among them); strace logs
    // the call as it enters, and the archive is rewritten meanwhile.
    let inner = env.command(&[
        "extract",
        archive.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ]);
    let child = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=lseek",
            "-e",
            "inject=lseek:delay_enter=2000000:when=1+",
        ])
        .arg("-o")
        .arg(&log)
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("lseek")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "extract never rewound"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut same_inode = fs::OpenOptions::new().write(true).open(&archive).unwrap();
    same_inode.write_all(&evil).unwrap();
    drop(same_inode);
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(out.join("etc/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o755,
        "the rewritten archive's setuid file was written"
    );
    assert_eq!(
        fs::read(&archive).unwrap(),
        evil,
        "the rewrite did not happen"
    );
}
