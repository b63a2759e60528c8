//! The `bank` commands (issue 5's acceptance list): the loader's choice over a table of banks,
//! `set-next` and `sync` changing only what they should, `bank check` levels and exit codes,
//! `bank verify` naming each broken module, and the probe's syslog message.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::testenv::{gzip, outcome, TestEnv};

const MODULES: [&str; 4] = ["b.b00", "jumpstrt.gz", "useropts.gz", "s.v00"];

/// (updated, bootstate, build) of one bank.
type Cfg = (u64, u64, &'static str);

/// Writes the modules TestEnv's boot.cfg names, as real gzip files.
fn install_modules(env: &TestEnv, bank: &str) {
    let data: Vec<u8> = (0..50_000u32)
        .flat_map(|n| n.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    for name in MODULES {
        fs::write(env.bank(bank).join(name), gzip(&data)).unwrap();
    }
}

/// A host whose two banks both boot and whose bootbank holds a fresh backup.
pub fn healthy() -> TestEnv {
    let env = TestEnv::esxi();
    install_modules(&env, "bootbank");
    install_modules(&env, "altbootbank");
    env.run(&["backup"]).ok();
    env
}

/// The lines of `a` and `b` that differ, as (before, after).
fn changed_lines(a: &[u8], b: &[u8]) -> Vec<(String, String)> {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    assert_eq!(a.lines().count(), b.lines().count(), "line count changed");
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

#[test]
fn bank_status_reports_the_loaders_choice_over_a_table() {
    let table: [(Cfg, Cfg, Option<&str>); 7] = [
        ((3, 0, "b"), (2, 0, "b"), Some("bootbank")),
        ((3, 0, "b"), (4, 1, "b"), Some("altbootbank")),
        ((3, 0, "b"), (4, 2, "b"), Some("bootbank")),
        ((3, 3, "b"), (2, 0, "b"), Some("altbootbank")),
        ((3, 0, "b"), (4, 0, ""), Some("bootbank")),
        ((3, 0, "b"), (3, 0, "b"), Some("bootbank")),
        ((3, 2, "b"), (2, 3, "b"), None),
    ];
    for (boot, alt, expected) in table {
        let env = TestEnv::new();
        env.boot_cfg("bootbank", boot.0, boot.1, boot.2);
        env.boot_cfg("altbootbank", alt.0, alt.1, alt.2);
        let report = env.run(&["bank", "status", "--json"]).ok().json();
        assert_eq!(report["next_boot"].as_str(), expected, "{boot:?} | {alt:?}");
        let banks = report["banks"].as_array().unwrap();
        assert_eq!(banks[0]["name"], "bootbank");
        assert_eq!(banks[1]["updated"], alt.0);
        assert_eq!(banks[1]["bootstate"], alt.1);
        let alt_ok = alt.1 < 2 && !alt.2.is_empty();
        assert_eq!(banks[1]["eligible"], alt_ok, "{alt:?}");
        assert_eq!(banks[1]["reason"].is_null(), alt_ok, "{alt:?}");
        assert!(banks[1]["archive"].is_null());
    }
}

#[test]
fn bank_status_explains_ineligible_banks_and_describes_archives() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.boot_cfg("altbootbank", 9, 2, "b");
    let report = env.run(&["bank", "status", "--json"]).ok().json();
    let reason = report["banks"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("bootstate=2"), "{reason}");
    let archive = &report["banks"][0]["archive"];
    let bytes = fs::read(env.state("bootbank")).unwrap();
    assert_eq!(archive["size"], bytes.len() as u64);
    assert_eq!(archive["sha256"].as_str().unwrap().len(), 64);
    let human = env.run(&["bank", "status"]).ok().stdout;
    assert!(human.contains("not eligible: bootstate=2"), "{human}");
    assert!(human.contains("next boot: bootbank"), "{human}");
}

#[test]
fn set_next_changes_one_value_and_flips_the_choice() {
    let env = TestEnv::new();
    let alt_cfg = env.bank("altbootbank").join("boot.cfg");
    let boot_before = env.read("bootbank/boot.cfg");
    let before = fs::read(&alt_cfg).unwrap();
    let run = env.run(&["bank", "set-next", "altbootbank"]).ok();
    assert!(run.stdout.contains("updated=2"), "{}", run.stdout);
    assert!(run.stdout.contains("updated=4"), "{}", run.stdout);
    let after = fs::read(&alt_cfg).unwrap();
    assert_eq!(
        changed_lines(&before, &after),
        [("updated=2".to_string(), "updated=4".to_string())]
    );
    assert_eq!(env.read("bootbank/boot.cfg"), boot_before);
    let status = env.run(&["bank", "status", "--json"]).ok().json();
    assert_eq!(status["next_boot"], "altbootbank");
    let inode = fs::metadata(&alt_cfg).unwrap().ino();
    let again = env.run(&["bank", "set-next", "altbootbank"]).ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(fs::metadata(&alt_cfg).unwrap().ino(), inode);
}

#[test]
fn set_next_refuses_an_ineligible_bank_unless_forced() {
    let env = TestEnv::new();
    env.boot_cfg("altbootbank", 2, 3, "7.0.3-0.20.19193900");
    let cfg = env.bank("altbootbank").join("boot.cfg");
    let before = fs::read(&cfg).unwrap();
    let refused = env.run(&["bank", "set-next", "altbootbank"]).code(1);
    assert!(refused.stderr.contains("bootstate=3"), "{}", refused.stderr);
    assert_eq!(fs::read(&cfg).unwrap(), before);
    env.run(&["bank", "set-next", "altbootbank", "--force"])
        .ok();
    let changes = changed_lines(&before, &fs::read(&cfg).unwrap());
    assert_eq!(
        changes,
        [
            ("bootstate=3".to_string(), "bootstate=0".to_string()),
            ("updated=2".to_string(), "updated=4".to_string())
        ]
    );
    let broken = b"bootstate=0\nupdated=+1\nbuild=b\n";
    fs::write(&cfg, broken).unwrap();
    let err = env
        .run(&["bank", "set-next", "altbootbank", "--force"])
        .code(1);
    assert!(err.stderr.contains("cannot be parsed"), "{}", err.stderr);
    assert_eq!(fs::read(&cfg).unwrap(), broken);
}

#[test]
fn sync_copies_the_archive_and_appends_one_module() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let alt_cfg = env.bank("altbootbank").join("boot.cfg");
    let before = fs::read(&alt_cfg).unwrap();
    env.run(&["bank", "sync"]).ok();
    assert_eq!(
        fs::read(env.state("altbootbank")).unwrap(),
        fs::read(env.state("bootbank")).unwrap()
    );
    let mode = fs::metadata(env.state("altbootbank")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o600);
    let changes = changed_lines(&before, &fs::read(&alt_cfg).unwrap());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].1, format!("{} --- state.tgz", changes[0].0));
    let inode = fs::metadata(env.state("altbootbank")).unwrap().ino();
    let again = env.run(&["bank", "sync", "--json"]).ok().json();
    assert_eq!(again["action"], "unchanged");
    assert_eq!(fs::metadata(env.state("altbootbank")).unwrap().ino(), inode);
    let leftovers: Vec<_> = fs::read_dir(env.bank("altbootbank"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sync_refuses_a_source_that_fails_verify() {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    env.run(&["bank", "sync"]).ok();
    let good = fs::read(env.state("altbootbank")).unwrap();
    let bytes = fs::read(env.state("bootbank")).unwrap();
    fs::write(env.state("bootbank"), &bytes[..bytes.len() / 2]).unwrap();
    let err = env.run(&["bank", "sync"]).code(1);
    assert!(err.stderr.contains("fails verify"), "{}", err.stderr);
    assert_eq!(fs::read(env.state("altbootbank")).unwrap(), good);
}

#[test]
fn verify_names_a_missing_module_a_truncated_kernel_and_a_corrupt_archive() {
    let env = healthy();
    env.run(&["bank", "verify"]).ok();
    let bank = env.bank("bootbank");
    fs::remove_file(bank.join("useropts.gz")).unwrap();
    let kernel = fs::read(bank.join("b.b00")).unwrap();
    fs::write(bank.join("b.b00"), &kernel[..kernel.len() - 100]).unwrap();
    let mut state = fs::read(env.state("bootbank")).unwrap();
    let middle = state.len() / 2;
    for byte in &mut state[middle..middle + 16] {
        *byte ^= 0x5a;
    }
    fs::write(env.state("bootbank"), &state).unwrap();
    let run = env.run(&["bank", "verify"]).code(1);
    let errors: Vec<&str> = run.stdout.lines().filter(|l| l.contains("error")).collect();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("useropts.gz") && l.contains("missing")),
        "{}",
        run.stdout
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("b.b00") && l.contains("truncated")),
        "{}",
        run.stdout
    );
    assert!(
        errors.iter().any(|l| l.contains("state.tgz")),
        "{}",
        run.stdout
    );
    assert!(
        errors.iter().all(|l| l.starts_with("bootbank:")),
        "{}",
        run.stdout
    );
    let json = env
        .run(&["bank", "verify", "--json", "altbootbank"])
        .ok()
        .json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["banks"].as_array().unwrap().len(), 1);
}

#[test]
fn a_module_named_by_kernel_and_modules_is_reported_once() {
    let env = healthy();
    let cfg = env.bank("bootbank").join("boot.cfg");
    let text = fs::read_to_string(&cfg).unwrap();
    let text = text.replace("modules=/jumpstrt.gz", "modules=/b.b00 --- /jumpstrt.gz");
    fs::write(&cfg, text).unwrap();
    fs::remove_file(env.bank("bootbank").join("b.b00")).unwrap();
    let run = env.run(&["bank", "verify", "bootbank"]).code(1);
    let kernel_lines = run.stdout.lines().filter(|l| l.contains("b.b00")).count();
    assert_eq!(kernel_lines, 1, "{}", run.stdout);
}

#[test]
fn verify_refuses_module_names_that_leave_the_bank() {
    let env = healthy();
    let cfg = env.bank("altbootbank").join("boot.cfg");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, text.replace("/s.v00", "/../bootbank/s.v00")).unwrap();
    let run = env.run(&["bank", "verify", "altbootbank"]).code(1);
    assert!(run.stdout.contains("leaves the bank"), "{}", run.stdout);
}

#[test]
fn check_is_ok_on_a_healthy_host() {
    let env = healthy();
    let run = env.run(&["bank", "check"]).code(0);
    assert!(run.stdout.starts_with("STATECTL OK - "), "{}", run.stdout);
    assert!(run.stdout.contains("| eligible_banks=2;"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
}

#[test]
fn check_warns_on_a_staged_upgrade_and_on_old_pending_changes() {
    let env = TestEnv::esxi();
    install_modules(&env, "bootbank");
    install_modules(&env, "altbootbank");
    env.boot_cfg("altbootbank", 4, 1, "8.0.0");
    env.run(&["backup"]).ok();
    let run = env.run(&["bank", "check"]).code(1);
    assert!(
        run.stdout.starts_with("STATECTL WARNING - "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("upgrade is staged"), "{}", run.stdout);

    let env = healthy();
    env.file("etc/hosts", Some("10.0.0.1 esx01\n"), 0o1644);
    let run = env.run(&["bank", "check"]).code(1);
    assert!(
        run.stdout.contains("pending for over an hour"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("etc/hosts"), "{}", run.stdout);
    assert!(run.stdout.contains("pending_over_1h=1;"), "{}", run.stdout);
}

#[test]
fn a_fresh_pending_change_is_not_yet_a_warning() {
    let env = healthy();
    fs::write(env.path("etc/hosts"), "10.0.0.2 esx01\n").unwrap();
    let run = env.run(&["bank", "check"]).code(0);
    assert!(run.stdout.contains("pending=1;"), "{}", run.stdout);
    assert!(run.stdout.contains("pending_over_1h=0;"), "{}", run.stdout);
}

#[test]
fn check_warns_when_the_fallback_bank_is_broken() {
    let env = healthy();
    fs::remove_file(env.bank("altbootbank").join("s.v00")).unwrap();
    let run = env.run(&["bank", "check"]).code(1);
    assert!(
        run.stdout.contains("fallback bank altbootbank"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_is_critical_without_an_eligible_bank_or_with_a_corrupt_archive() {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 2, "b");
    env.boot_cfg("altbootbank", 2, 3, "b");
    let run = env.run(&["bank", "check"]).code(2);
    assert!(
        run.stdout
            .starts_with("STATECTL CRITICAL - no eligible boot bank"),
        "{}",
        run.stdout
    );

    let env = healthy();
    let bytes = fs::read(env.state("bootbank")).unwrap();
    fs::write(env.state("bootbank"), &bytes[..bytes.len() - 9]).unwrap();
    let run = env.run(&["bank", "check"]).code(2);
    assert!(
        run.stdout.contains("next-boot bank bootbank"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_reports_its_own_failures_as_unknown() {
    let env = TestEnv::new();
    fs::remove_dir_all(env.bank("altbootbank")).unwrap();
    let run = env.run(&["bank", "check"]).code(3);
    assert!(
        run.stdout.starts_with("STATECTL UNKNOWN - "),
        "{}",
        run.stdout
    );
    let run = env.run(&["bank", "check", "--no-such-flag"]).code(3);
    assert!(
        run.stdout.starts_with("STATECTL UNKNOWN - "),
        "{}",
        run.stdout
    );
}

#[test]
fn a_critical_check_reaches_syslog() {
    let env = TestEnv::new();
    env.boot_cfg("bootbank", 3, 2, "b");
    env.boot_cfg("altbootbank", 2, 3, "b");
    let socket_path = env.dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let output = env
        .command(&["bank", "check"])
        .env("STATECTL_SYSLOG_SOCKET", &socket_path)
        .output()
        .unwrap();
    outcome(output).code(2);
    let mut buf = [0u8; 4096];
    let got = socket.recv(&mut buf).expect("a syslog datagram");
    let message = String::from_utf8_lossy(&buf[..got]);
    assert!(message.starts_with("<11>statectl["), "{message}");
    assert!(
        message.contains("CRITICAL: no eligible boot bank"),
        "{message}"
    );
}
