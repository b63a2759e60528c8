//! statectl's writes of boot.cfg, read back with the loader's rules, and which banks a backup
//! writes (issue 12): staged upgrade, manual switch, rollback target, an unusable bootbank
//! boot.cfg; each bank's manifest records its own build.

use std::fs;
use std::io::Read;

use crate::testenv::TestEnv;

const OLD: &str = "6.7.0-3.139.17700523";
const RUNNING: &str = "7.0.3-0.20.19193900";
const NEW: &str = "8.0.1-0.0.21495797";

/// (manifest build, local.tgz member names) of a state.tgz.
fn archive_of(path: &std::path::Path) -> (String, Vec<String>) {
    let gz = flate2::read::GzDecoder::new(fs::File::open(path).unwrap());
    let mut outer = tar::Archive::new(gz);
    let (mut build, mut members) = (String::new(), Vec::new());
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "statectl.json" {
            let manifest: serde_json::Value = serde_json::from_slice(&data).unwrap();
            build = manifest["build"].as_str().unwrap().to_string();
        } else if name == "local.tgz" {
            let mut inner = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
            for member in inner.entries().unwrap() {
                members.push(
                    member
                        .unwrap()
                        .path()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    (build, members)
}

/// Asserts the loader model, read back through `bank status`, gives `next` and `updated`.
#[track_caller]
fn model_says(env: &TestEnv, next: &str, bank: usize, updated: u64, bootstate: i64) {
    let status = env.run(&["bank", "status", "--json"]).ok().json();
    assert_eq!(status["next_boot"], next, "{status}");
    assert_eq!(status["tie"], false);
    assert_eq!(status["banks"][bank]["updated"], updated);
    assert_eq!(status["banks"][bank]["bootstate"], bootstate);
}

/// Asserts the loader reads `modules=` of `bank` as listing state.tgz.
#[track_caller]
fn lists_state(env: &TestEnv, bank: &str) {
    let verify = env.run(&["bank", "verify", bank, "--json"]).json();
    let problems = verify["banks"][0]["problems"].to_string();
    assert!(env.state(bank).exists());
    assert!(!problems.contains("does not list it"), "{problems}");
}

/// A boot.cfg with kernel, modules and build, then `extra`.
fn cfg_with(extra: &str) -> Vec<u8> {
    format!("bootstate=0\ntitle=Loading VMware ESXi\nkernel=/b.b00\nmodules=/s.v00\nbuild={RUNNING}\n{extra}")
        .into_bytes()
}

/// A hand-edited file: CRLF, upper-case `Modules=`, a look-alike `updated = 9`, no final newline.
fn hand_edited(build: &str, updated: u64) -> Vec<u8> {
    format!(
        "bootstate=0\r\nkernel=/b.b00\r\nModules=/s.v00\r\nbuild={build}\r\nupdated = 9\r\nupdated={updated}"
    )
    .into_bytes()
}

#[test]
fn set_next_and_force_are_read_back_as_reported() {
    let env = TestEnv::new();
    let alt_cfg = env.bank("altbootbank").join("boot.cfg");
    fs::write(&alt_cfg, hand_edited(RUNNING, 2)).unwrap();
    let report = env
        .run(&["bank", "set-next", "altbootbank", "--json"])
        .ok()
        .json();
    assert_eq!(report["next_boot"], "altbootbank");
    assert_eq!(report["after"]["updated"], 4);
    model_says(&env, "altbootbank", 1, 4, 0);
    let text = fs::read(&alt_cfg).unwrap();
    assert_eq!(
        text,
        hand_edited(RUNNING, 4),
        "{}",
        String::from_utf8_lossy(&text)
    );

    // The example: `updated = 3` is no key to the loader; --force writes a real one.
    let spaced = b"bootstate=3\nkernel=/b.b00\nbuild=7.0.3-0.20.19193900\nupdated = 3\n";
    fs::write(&alt_cfg, spaced).unwrap();
    let refused = env.run(&["bank", "set-next", "altbootbank"]).code(1);
    assert!(
        refused.stderr.contains("blank before `=`"),
        "{}",
        refused.stderr
    );
    let report = env
        .run(&["bank", "set-next", "altbootbank", "--force", "--json"])
        .ok()
        .json();
    model_says(
        &env,
        "altbootbank",
        1,
        report["after"]["updated"].as_u64().unwrap(),
        0,
    );
    assert_eq!(
        fs::read(&alt_cfg).unwrap(),
        b"bootstate=0\nkernel=/b.b00\nbuild=7.0.3-0.20.19193900\nupdated=4\n"
    );
    let back = env
        .run(&["bank", "set-next", "bootbank", "--json"])
        .ok()
        .json();
    model_says(
        &env,
        "bootbank",
        0,
        back["after"]["updated"].as_u64().unwrap(),
        0,
    );
}

#[test]
fn backup_install_and_sync_leave_a_file_the_loader_reads_as_listing_state_tgz() {
    let env = TestEnv::esxi();
    for bank in ["bootbank", "altbootbank"] {
        fs::write(env.bank(bank).join("boot.cfg"), hand_edited(RUNNING, 3)).unwrap();
    }
    fs::write(
        env.bank("altbootbank").join("boot.cfg"),
        hand_edited(RUNNING, 2),
    )
    .unwrap();
    env.run(&["backup"]).ok();
    lists_state(&env, "bootbank");
    // The changed line keeps the file's spelling of its key (`Modules=`).
    let expected = "bootstate=0\r\nkernel=/b.b00\r\nModules=/s.v00 --- state.tgz\r\nbuild=7.0.3-0.20.19193900\r\nupdated = 9\r\nupdated=3";
    assert_eq!(
        fs::read(env.bank("bootbank").join("boot.cfg")).unwrap(),
        expected.as_bytes()
    );
    env.run(&["bank", "sync"]).ok();
    lists_state(&env, "altbootbank");
    model_says(&env, "bootbank", 0, 3, 0);
    let copy = env.dir.path().join("copy.tgz");
    fs::copy(env.state("bootbank"), &copy).unwrap();
    fs::write(
        env.bank("bootbank").join("boot.cfg"),
        hand_edited(RUNNING, 3),
    )
    .unwrap();
    env.run(&["install", copy.to_str().unwrap()]).ok();
    lists_state(&env, "bootbank");
    model_says(&env, "bootbank", 0, 3, 0);
}

#[test]
fn a_modules_line_the_loader_does_not_read_is_never_rewritten() {
    let env = TestEnv::esxi();
    let text =
        b"bootstate=0\nkernel=/b.b00\nmodules = /s.v00\nbuild=7.0.3-0.20.19193900\nupdated=3\n";
    fs::write(env.bank("bootbank").join("boot.cfg"), text).unwrap();
    let run = env.run(&["backup"]).ok();
    assert!(
        run.stderr.contains("not read as `modules`"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs::read(env.bank("bootbank").join("boot.cfg")).unwrap(),
        text
    );
}

/// A host whose altbootbank boots next with `build` and `bootstate`, with a configblacklist.
fn staged(build: &str, bootstate: u64) -> TestEnv {
    let env = TestEnv::esxi();
    env.boot_cfg("altbootbank", 4, bootstate, build);
    fs::create_dir_all(env.path("var/run")).unwrap();
    fs::write(env.path("var/run/configblacklist"), "/etc/hosts\n").unwrap();
    for bank in ["bootbank", "altbootbank"] {
        for module in ["b.b00", "jumpstrt.gz", "useropts.gz", "s.v00"] {
            fs::write(env.bank(bank).join(module), b"module").unwrap();
        }
    }
    env
}

#[test]
fn a_staged_upgrade_writes_both_banks_each_with_its_own_build() {
    let env = staged(NEW, 1);
    let report = env.run(&["backup", "--json"]).ok().json();
    let banks: Vec<&str> = report["banks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(
        banks,
        [
            env.bank("bootbank").to_str().unwrap(),
            env.bank("altbootbank").to_str().unwrap()
        ]
    );
    let (boot_build, boot_files) = archive_of(&env.state("bootbank"));
    let (alt_build, alt_files) = archive_of(&env.state("altbootbank"));
    assert_eq!((boot_build.as_str(), alt_build.as_str()), (RUNNING, NEW));
    assert!(
        boot_files.contains(&"etc/hosts".to_string()),
        "{boot_files:?}"
    );
    assert!(
        !alt_files.contains(&"etc/hosts".to_string()),
        "{alt_files:?}"
    );
    assert_eq!(alt_files.len() + 1, boot_files.len());
    let again = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(again["action"], "unchanged");
    // status compares with the next-boot (upgraded) bank: the left-out file is not pending.
    env.run(&["status"]).ok();
    let check = env.run(&["bank", "check"]).code(1).stdout;
    assert!(check.contains("an upgrade is staged"), "{check}");
}

#[test]
fn a_manual_switch_to_the_same_build_writes_both_banks() {
    let env = staged(RUNNING, 0);
    let report = env.run(&["backup", "--json"]).ok().json();
    assert_eq!(report["banks"].as_array().unwrap().len(), 2);
    assert_eq!(archive_of(&env.state("altbootbank")).0, RUNNING);
    assert_eq!(archive_of(&env.state("bootbank")).0, RUNNING);
    let check = env.run(&["bank", "check"]).code(1).stdout;
    assert!(check.contains("a manual switch"), "{check}");
}

#[test]
fn a_rollback_target_is_never_overwritten_unless_named() {
    let env = TestEnv::esxi();
    env.boot_cfg("altbootbank", 4, 0, OLD);
    fs::write(env.state("altbootbank"), b"the 6.7 state").unwrap();
    let run = env.run(&["backup", "--json"]).ok();
    let report = run.json();
    assert_eq!(report["banks"].as_array().unwrap().len(), 1);
    // A chosen condition: in the JSON and with -v, not mailed by every cron run.
    assert!(report["warnings"].to_string().contains("rollback target"));
    assert_eq!(run.stderr, "");
    let verbose = env.run(&["backup", "-v"]).ok();
    assert!(
        verbose.stderr.contains("rollback target"),
        "{}",
        verbose.stderr
    );
    assert_eq!(
        fs::read(env.state("altbootbank")).unwrap(),
        b"the 6.7 state"
    );
    assert_eq!(archive_of(&env.state("bootbank")).0, RUNNING);
    let check = env.run(&["bank", "check"]).stdout;
    assert!(check.contains("a rollback target"), "{check}");
    let sync = env.run(&["bank", "sync", "--from", "bootbank"]).code(1);
    assert!(sync.stderr.contains("rollback target"), "{}", sync.stderr);
    let alt = env.bank("altbootbank");
    env.run(&["backup", "--bank", alt.to_str().unwrap()]).ok();
    assert_eq!(archive_of(&env.state("altbootbank")).0, OLD);
}

#[test]
fn an_unusable_bootbank_file_is_critical_and_names_the_archive_that_would_load() {
    let env = TestEnv::esxi();
    env.run(&[
        "backup",
        "--bank",
        env.bank("altbootbank").to_str().unwrap(),
    ])
    .ok();
    let cfg = env.bank("bootbank").join("boot.cfg");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("updated=3", "updated=+3");
    fs::write(&cfg, text).unwrap();
    let check = env.run(&["bank", "check"]).code(2).stdout;
    assert!(check.starts_with("STATECTL CRITICAL - "), "{check}");
    assert!(check.contains("cannot use bootbank's boot.cfg"), "{check}");
    assert!(
        check.contains(env.state("altbootbank").to_str().unwrap()),
        "{check}"
    );
}

#[test]
fn status_lists_the_lines_the_loader_ignores() {
    let env = TestEnv::new();
    let text = cfg_with("updated = 3\nno separator\nup=2\nupdated=4\n");
    fs::write(env.bank("altbootbank").join("boot.cfg"), &text).unwrap();
    let status = env.run(&["bank", "status", "--json"]).ok().json();
    let ignored = status["banks"][1]["ignored"].as_array().unwrap();
    let lines: Vec<u64> = ignored
        .iter()
        .map(|n| n["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [6, 7, 8], "{ignored:?}");
    assert!(ignored[0]["note"]
        .as_str()
        .unwrap()
        .contains("blank before"));
    assert!(ignored[2]["note"].as_str().unwrap().contains("overridden"));
    assert_eq!(status["banks"][1]["updated"], 4);
    let human = env.run(&["bank", "status"]).ok().stdout;
    assert!(human.contains("line 6 `updated = 3`"), "{human}");
    let verify = env.run(&["bank", "verify", "altbootbank"]).code(1).stdout;
    assert!(verify.contains("warning: boot.cfg line 6"), "{verify}");
}

#[test]
fn verify_names_what_mboot_refuses() {
    let env = TestEnv::new();
    let text = b"bootstate=0\ntimeout=5 # s\nbuild=b\nupdated=4\nskip=1\n";
    fs::write(env.bank("altbootbank").join("boot.cfg"), text).unwrap();
    let out = env.run(&["bank", "verify", "altbootbank"]).code(1).stdout;
    // mboot stops at the malformed line (bootlib/parse.c:183), so `skip` is never read.
    assert!(
        out.contains("line 5 `skip=1`: after the malformed line"),
        "{out}"
    );
    let text = b"bootstate=0\ntimeout=5\nbuild=b\nupdated=4\nskip=1\n";
    fs::write(env.bank("altbootbank").join("boot.cfg"), text).unwrap();
    let out = [
        out,
        env.run(&["bank", "verify", "altbootbank"]).code(1).stdout,
    ]
    .concat();
    let far = format!(
        "kernel=/b.b00\nkernelopt={}\nbuild=b\nupdated=4\nbootstate=1\n",
        "x".repeat(520)
    );
    fs::write(env.bank("altbootbank").join("boot.cfg"), far).unwrap();
    let out = [
        out,
        env.run(&["bank", "verify", "altbootbank"]).code(1).stdout,
    ]
    .concat();
    for needle in [
        "timeout=5 # s",
        "no `kernel=`",
        "`skip` is set",
        "first 512 bytes",
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains("error") && l.contains(needle)),
            "{needle}: {out}"
        );
    }
}

#[test]
fn a_tie_is_a_warning_that_says_so() {
    let env = staged(RUNNING, 0);
    env.boot_cfg("altbootbank", 3, 0, RUNNING);
    let check = env.run(&["bank", "check"]).code(1).stdout;
    assert!(
        check.contains("tie: both banks are eligible with updated=3"),
        "{check}"
    );
    let status = env.run(&["bank", "status"]).ok().stdout;
    assert!(status.contains("next boot: tie"), "{status}");
}
