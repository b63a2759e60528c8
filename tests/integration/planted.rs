//! Files another user can plant where statectl reads a non-member file: a FIFO (which would
//! block an open for reading forever) or a link to `/dev/zero` (endless bytes) at the config,
//! `esx.conf`, a bank's `state.tgz`, `boot.cfg`, `configblacklist` and ESXi's PID lock. Every
//! command finishes within `--wait` + 5 s, in under 64 MiB (GNU time), and where it needs the
//! file it exits 1 naming it; ESXi's lock is no lock unless it is a root-owned regular file. An
//! envelope that expands far past the archive is refused before it is spooled whole.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::testenv::{outcome, require, Outcome, TestEnv};

const WAIT: u64 = 1;

/// What can be planted at a name.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Fifo,
    Zero,
}

fn plant(path: &Path, kind: Plant) {
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match kind {
        Plant::Fifo => {
            let mode = rustix::fs::Mode::from_raw_mode(0o666);
            rustix::fs::mkfifoat(rustix::fs::CWD, path, mode).unwrap();
        }
        Plant::Zero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
    }
}

/// A host with one flagged file, backed up once.
fn host() -> TestEnv {
    let env = TestEnv::new();
    env.flagged("etc/hosts", "127.0.0.1 localhost\n");
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    env.run(&["backup"]).ok();
    env
}

/// Runs `args` killed after `--wait` + 5 s, under GNU time: the outcome, seconds, peak KiB.
fn bounded(env: &TestEnv, args: &[&str]) -> (Outcome, f64, i64) {
    let report = env.dir.path().join("time.out");
    let _ = std::fs::remove_file(&report);
    let inner = env.command(args);
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-s",
        "KILL",
        &(WAIT + 5).to_string(),
        "/usr/bin/time",
        "-f",
        "%M",
        "-o",
    ]);
    cmd.arg(&report)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let started = Instant::now();
    let out = outcome(cmd.stdin(std::process::Stdio::null()).output().unwrap());
    let secs = started.elapsed().as_secs_f64();
    let kib = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| text.lines().last()?.trim().parse().ok())
        .unwrap_or(-1);
    (out, secs, kib)
}

/// Runs each command with `rel` planted as `kind`: each finishes in time and memory, and
/// each of `needs` (the commands that read the file) exits 1 naming it.
fn check(rel: &str, commands: &[&[&str]], needs: &[&str]) {
    check_on(host, rel, commands, needs)
}

/// As [`check`], on hosts made by `make`.
fn check_on(make: fn() -> TestEnv, rel: &str, commands: &[&[&str]], needs: &[&str]) {
    for kind in [Plant::Fifo, Plant::Zero] {
        let env = make();
        plant(&env.path(rel), kind);
        let extract_to = env.dir.path().join("out");
        for args in commands {
            let mut args = args.to_vec();
            if args[0] == "extract" {
                args.extend(["--to", extract_to.to_str().unwrap()]);
            }
            let (out, secs, kib) = bounded(&env, &args);
            let what = format!("{args:?} with {rel} a {kind:?}");
            eprintln!("{what}: exit {} in {secs:.2} s, {kib} KiB", out.code);
            assert!(secs < (WAIT + 5) as f64 && out.code != 137, "{what} hung");
            assert!(kib > 0 && kib < 64 * 1024, "{what}: {kib} KiB");
            if needs.contains(&args[0]) {
                assert_eq!(out.code, 1, "{what}: {}", out.stderr);
                let name = rel.rsplit('/').next().unwrap();
                assert!(out.stderr.contains(name), "{what}: {}", out.stderr);
            }
        }
    }
}

const WAIT_ARG: &str = "1";

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn a_planted_config_or_esx_conf_is_refused_without_hanging() {
    require("/usr/bin/time");
    let commands: &[&[&str]] = &[
        &["backup", "--force", "--wait", WAIT_ARG],
        &["status"],
        &["diff"],
    ];
    check("etc/statectl.toml", commands, &["backup", "status", "diff"]);
    check("etc/vmware/esx.conf", commands, &["backup"]);
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn a_planted_state_tgz_is_refused_by_every_reader_without_hanging() {
    require("/usr/bin/time");
    let commands: &[&[&str]] = &[
        &["backup", "--force", "--wait", WAIT_ARG],
        &["status"],
        &["diff"],
        &["list"],
        &["verify"],
        &["restore", "--wait", WAIT_ARG],
        &["extract"],
        &["bank", "check"],
        &["bank", "status"],
    ];
    let readers = [
        "backup", "status", "diff", "list", "verify", "restore", "extract",
    ];
    check("bootbank/state.tgz", commands, &readers);
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time (.ci/run installs it)"]
fn a_planted_boot_cfg_or_configblacklist_never_hangs() {
    require("/usr/bin/time");
    let commands: &[&[&str]] = &[
        &["backup", "--force", "--wait", WAIT_ARG],
        &["status"],
        &["bank", "check"],
        &["bank", "status"],
        &["bank", "verify"],
    ];
    check("bootbank/boot.cfg", commands, &[]);
    // The blacklist is read when an upgrade is staged in the altbootbank (updated higher).
    let staged = || {
        let env = host();
        env.boot_cfg("altbootbank", 4, 0, "7.0.3-0.20.19193900");
        env
    };
    check_on(staged, "var/run/configblacklist", commands, &[]);
    // bank check names the unreadable boot.cfg and says CRITICAL (exit 2): no bank to boot.
    let env = host();
    plant(&env.bank("bootbank").join("boot.cfg"), Plant::Fifo);
    plant(&env.bank("altbootbank").join("boot.cfg"), Plant::Fifo);
    let out = env.run(&["bank", "check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("FIFO"), "{out:?}");
}

#[test]
#[ignore = "needs GNU time, /usr/bin/time, and root (.ci/run installs it and runs as root)"]
fn a_fifo_or_link_at_esxis_lock_is_no_holder_and_is_reported() {
    require("/usr/bin/time");
    require("root");
    for kind in [Plant::Fifo, Plant::Zero] {
        let env = host();
        let lock = env.path("tmp/bootbank.lck");
        plant(&lock, kind);
        let wait = ["--json", "backup", "--force", "--wait", "60"];
        let (out, secs, kib) = bounded(&env, &wait);
        assert!(secs < 6.0 && out.code == 0, "{kind:?}: {secs} s {out:?}");
        assert!(kib < 64 * 1024, "{kib} KiB");
        let warnings = out.json()["warnings"].to_string();
        assert!(warnings.contains("bootbank.lck"), "{warnings}");
        assert!(lock.symlink_metadata().is_err(), "the lock is released");
    }
    // A directory with files in it cannot be removed: exit 1 at once, naming it.
    let env = host();
    std::fs::create_dir_all(env.path("tmp/bootbank.lck/x")).unwrap();
    let started = Instant::now();
    let out = env.run(&["backup", "--force", "--wait", "60"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("bootbank.lck"), "{}", out.stderr);
    // Another user's regular file naming a live PID (1) is no holder either.
    let env = host();
    let lock = env.path("tmp/bootbank.lck");
    std::fs::write(&lock, "1\n").unwrap();
    std::os::unix::fs::chown(&lock, Some(12345), Some(12345)).unwrap();
    let started = Instant::now();
    env.run(&["backup", "--force", "--wait", "60"]).ok();
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A `state.tgz` whose `local.tgz.ve` is `size` bytes of zeros: a few hundred KiB that expand
/// to far more than any real envelope (ciphertext does not compress).
fn zero_envelope(path: &Path, size: u64) {
    use std::io::Write;
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let mut outer = tar::Builder::new(gz);
    let mut append = |name: &str, size: u64, data: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        outer.append_data(&mut header, name, data).unwrap();
    };
    append("encryption.info", 2, &mut &b"{}"[..]);
    append("local.tgz.ve", size, &mut std::io::repeat(0).take(size));
    outer
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

#[test]
fn a_compressed_envelope_is_refused_before_it_fills_the_temp_space() {
    let env = TestEnv::new();
    let archive = env.dir.path().join("bomb.tgz");
    zero_envelope(&archive, 400 << 20);
    let input = std::fs::metadata(&archive).unwrap().len();
    assert!(input < 2 << 20, "{input} bytes");
    // No file of this run may grow past 96 MiB (`ulimit -f` counts 512-byte blocks; the input
    // plus 64 MiB, and some): a spool of the whole envelope would be killed (SIGXFSZ) instead.
    let inner = env.command(&["verify", archive.to_str().unwrap()]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -f 196608 && exec \"$@\"", "sh"]);
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    let out = outcome(cmd.output().unwrap());
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("local.tgz.ve") && out.stderr.contains("64"),
        "{}",
        out.stderr
    );
}
