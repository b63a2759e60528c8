//! Encrypted configuration (issue 11, SPEC.md "Encrypted configuration"): hosts whose
//! `state.tgz` holds `local.tgz.ve` + `encryption.info` as ESXi 7.0 U2+ writes it. The
//! envelopes are made with statectl's own encoder and checked by an independent reader
//! (dissect.hypervisor, through `tests/helpers/dissect_envelope.py`; SKIPPED when missing).

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use statectl::archive::envelope::probe::{probe, Layout};
use statectl::archive::envelope::{seal, Encryption};
use statectl::archive::Limits;

use crate::testenv::{gzip, have, sh, tar_of, tree, TestEnv, ESXI_SELECTED};

/// A mode-NONE key store with fixed random-looking fields, as ESXi writes it (`%3d` for `=`).
fn keystore(mode: &str) -> Vec<u8> {
    format!(
        ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"{mode}\"\n\
         ConfigEncData = \"keyId=q83vASNFZ4mrze8BI0VniQ%3d%3d:data1=EjRWeJq83vASNFZ4mrze8A%3d%3d:\
         data2=ESIzRFVmd4iZqrvM3e7/AA%3d%3d:version=1\"\n"
    )
    .into_bytes()
}

/// `local_tgz` sealed as `local.tgz.ve` under the key of `keystore` (mode NONE).
fn envelope_of(local_tgz: &[u8], keystore: &[u8]) -> Vec<u8> {
    let encryption = Encryption::from_keystore(keystore.to_vec()).unwrap();
    let mut out = Vec::new();
    seal::seal(&encryption, local_tgz, local_tgz.len() as u64)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The bytes of member `name` of the gzip'd tar at `path`.
fn member(path: &Path, name: &str) -> Vec<u8> {
    let file = flate2::read::GzDecoder::new(fs::File::open(path).unwrap());
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == name {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no {name} in {}", path.display())
}

/// An ESXi-style encrypted `state.tgz` (no manifest) from members `(name, bytes)`.
fn esxi_state(members: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<(&str, &[u8], u32)> = members.iter().map(|(n, b)| (*n, *b, 0o644)).collect();
    gzip(&tar_of(&files))
}

/// The esxi host, backed up once, then its archive turned into ESXi's encrypted layout.
fn encrypted_host() -> TestEnv {
    let env = TestEnv::esxi();
    env.run(&["backup"]).ok();
    let state = env.state("bootbank");
    let local = member(&state, "local.tgz");
    let keys = keystore("NONE");
    let sealed = envelope_of(&local, &keys);
    fs::write(
        &state,
        esxi_state(&[("encryption.info", &keys), ("local.tgz.ve", &sealed)]),
    )
    .unwrap();
    env
}

fn encryption_of(path: &Path) -> Encryption {
    match probe(path, &Limits::default()) {
        Layout::Encrypted(encryption) => encryption,
        other => panic!("{} is not encrypted: {other:?}", path.display()),
    }
}

fn iv_of(path: &Path) -> Vec<u8> {
    let header = encryption_of(path)
        .header
        .expect("a readable envelope header");
    header.bytes("vmware.iv").unwrap().to_vec()
}

/// `sha256` per path of `list --json`.
fn listing(env: &TestEnv, archive: &Path) -> Vec<(String, String)> {
    let out = env.run(&["--json", "list", archive.to_str().unwrap()]).ok();
    let rows = out.json();
    let rows = rows.as_array().expect("list --json stays an array").clone();
    rows.iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().into(),
                r["sha256"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Decrypts `state` with dissect.hypervisor into `out`; false (SKIPPED printed) when missing.
fn dissect_decrypt(state: &Path, out: &Path) -> bool {
    if !have("python3") {
        return false;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/dissect_envelope.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(state)
        .arg(out)
        .output()
        .unwrap();
    if run.status.code() == Some(77) {
        eprintln!("{}", String::from_utf8_lossy(&run.stderr).trim());
        return false;
    }
    assert!(
        run.status.success(),
        "dissect failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    true
}

#[test]
fn dissect_decrypts_what_backup_and_pack_like_write_to_a_local_tgz_gnu_tar_reads() {
    let env = encrypted_host();
    env.flagged("etc/hosts", "10.0.0.1 esx01\n");
    env.run(&["backup"]).ok();
    let work = env.dir.path().join("work");
    env.run(&["extract", "--to", work.to_str().unwrap()]).ok();
    fs::write(work.join("etc/motd"), "edited by hand\n").unwrap();
    let packed = env.dir.path().join("packed.tgz");
    let state = env.state("bootbank");
    let like = [
        "pack",
        work.to_str().unwrap(),
        "--like",
        state.to_str().unwrap(),
    ];
    env.run(&[&like[..], &["--output", packed.to_str().unwrap()]].concat())
        .ok();
    for (archive, extra) in [(&state, None), (&packed, Some("etc/motd"))] {
        let local = env.dir.path().join("local.tgz");
        if !dissect_decrypt(archive, &local) {
            return;
        }
        let unpacked = env.dir.path().join("unpacked");
        fs::create_dir_all(&unpacked).unwrap();
        sh(&unpacked, &format!("tar -xzf {}", local.display()));
        let mut expected: Vec<&str> = ESXI_SELECTED.to_vec();
        expected.extend(extra);
        expected.sort();
        let names: Vec<String> = tree(&unpacked).into_iter().map(|f| f.0).collect();
        assert_eq!(names, expected, "{}", archive.display());
        assert_eq!(
            fs::read(unpacked.join("etc/hosts")).unwrap(),
            b"10.0.0.1 esx01\n"
        );
        fs::remove_dir_all(&unpacked).unwrap();
    }
}

#[test]
fn an_encrypted_host_sees_changes_and_backup_keeps_it_encrypted_with_a_new_iv() {
    let env = encrypted_host();
    let state = env.state("bootbank");
    let status = env.run(&["--json", "status"]).ok().json();
    assert_eq!(status["encrypted"], "none-mode");
    let before = fs::read(&state).unwrap();
    let unchanged = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(unchanged["action"], "unchanged");
    assert_eq!(
        fs::read(&state).unwrap(),
        before,
        "a no-change backup wrote"
    );

    env.flagged("etc/hosts", "10.0.0.1 esx01\n");
    let status = env.run(&["--json", "status"]).code(3).json();
    assert_eq!(status["modified"][0], "etc/hosts");
    let diff = env.run(&["diff"]).code(3);
    assert!(diff.stdout.contains("+10.0.0.1 esx01"), "{}", diff.stdout);
    let old_iv = iv_of(&state);
    let written = env.run(&["--json", "backup"]).ok().json();
    assert_eq!(written["action"], "written");
    assert_ne!(iv_of(&state), old_iv, "the IV was reused");
    assert_eq!(member(&state, "encryption.info"), keystore("NONE"));
    let verify = env.run(&["--json", "verify"]).ok().json();
    assert_eq!(verify["encrypted"], "none-mode");
    let banks = env.run(&["--json", "bank", "status"]).ok().json();
    assert_eq!(banks["banks"][0]["archive"]["encrypted"], "none-mode");
    env.run(&["status"]).ok();
    let forced = env.run(&["backup", "--force"]).ok();
    assert!(forced.stderr.is_empty(), "{}", forced.stderr);
    assert!(matches!(
        probe(&state, &Limits::default()),
        Layout::Encrypted(_)
    ));
}

#[test]
fn passwd_clear_keeps_encryption_and_every_other_file() {
    let env = encrypted_host();
    let state = env.state("bootbank");
    let before = listing(&env, &state);
    let iv = iv_of(&state);
    env.run(&[
        "passwd",
        "root",
        "--clear",
        "--archive",
        state.to_str().unwrap(),
    ])
    .ok();
    let after = listing(&env, &state);
    assert_eq!(iv_of(&state).len(), 12);
    assert_ne!(iv_of(&state), iv);
    assert_eq!(member(&state, "encryption.info"), keystore("NONE"));
    for (path, sha) in &before {
        let now = after.iter().find(|(p, _)| p == path).map(|(_, s)| s);
        if path == "etc/shadow" {
            assert_ne!(now, Some(sha), "shadow unchanged");
        } else {
            assert_eq!(now, Some(sha), "{path} changed");
        }
    }
    let work = env.dir.path().join("x");
    env.run(&["extract", "--to", work.to_str().unwrap()]).ok();
    let shadow = fs::read_to_string(work.join("etc/shadow")).unwrap();
    assert!(shadow.starts_with("root::19000:"), "{shadow}");
}

#[test]
fn restore_and_extract_read_an_encrypted_archive() {
    let env = encrypted_host();
    let state = env.state("bootbank");
    let out = env.dir.path().join("out");
    env.run(&[
        "extract",
        state.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ])
    .ok();
    let names: Vec<String> = tree(&out).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ESXI_SELECTED.to_vec());
    let fresh = TestEnv::new();
    let plan = fresh
        .run(&["--json", "restore", state.to_str().unwrap(), "--dry-run"])
        .ok()
        .json();
    assert_eq!(
        plan["create"].as_array().unwrap().len(),
        ESXI_SELECTED.len()
    );
    fresh
        .run(&["restore", state.to_str().unwrap(), "--force"])
        .ok();
    assert_eq!(fresh.read("etc/hosts"), b"127.0.0.1 localhost\n");
}

/// Every way a damaged encrypted archive is refused: exit 1, nothing written anywhere.
#[track_caller]
fn refused_everywhere(env: &TestEnv, state: &Path, what: &str) {
    let archive = state.to_str().unwrap();
    for args in [vec!["verify", archive], vec!["list", archive]] {
        let out = env.run(&args).code(1);
        assert!(
            out.stderr.contains("statectl: error:"),
            "{what}: {}",
            out.stderr
        );
    }
    let out = env.dir.path().join(format!("x-{}", what.replace(' ', "-")));
    env.run(&["extract", archive, "--to", out.to_str().unwrap()])
        .code(1);
    assert!(
        !out.exists() || tree(&out).is_empty(),
        "{what}: extract wrote"
    );
    let fresh = TestEnv::new();
    fresh.run(&["restore", archive, "--force"]).code(1);
    assert!(tree(&fresh.path("etc")).is_empty(), "{what}: restore wrote");
}

#[test]
fn a_bit_flipped_in_ciphertext_tag_header_or_key_store_is_refused() {
    let local = gzip(&tar_of(&[("etc/hosts", b"127.0.0.1 localhost\n", 0o644)]));
    let keys = keystore("NONE");
    let sealed = envelope_of(&local, &keys);
    let env = TestEnv::new();
    let state = env.dir.path().join("state.tgz");
    // The envelope first, the key store second: the reader spools the envelope.
    fs::write(
        &state,
        esxi_state(&[("local.tgz.ve", &sealed), ("encryption.info", &keys)]),
    )
    .unwrap();
    env.run(&["verify", state.to_str().unwrap()]).ok();
    let tag_at = sealed.len() - 4096 + 32;
    for (what, at) in [
        ("ciphertext", 4096 + 100),
        ("tag", tag_at),
        ("header", 530),
        ("pad", 3000),
    ] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x04;
        fs::write(
            &state,
            esxi_state(&[("local.tgz.ve", &bad), ("encryption.info", &keys)]),
        )
        .unwrap();
        refused_everywhere(&env, &state, what);
    }
    let text = String::from_utf8(keys.clone()).unwrap();
    let bad_keys = text.replace("data2=ESIz", "data2=ESIy").into_bytes();
    fs::write(
        &state,
        esxi_state(&[("encryption.info", &bad_keys), ("local.tgz.ve", &sealed)]),
    )
    .unwrap();
    refused_everywhere(&env, &state, "key store");
}

#[test]
fn a_tpm_key_store_gets_one_line_from_every_reader_and_backup_keeps_the_archive() {
    let env = encrypted_host();
    let state = env.state("bootbank");
    let sealed = member(&state, "local.tgz.ve");
    fs::write(
        &state,
        esxi_state(&[
            ("encryption.info", &keystore("TPM")),
            ("local.tgz.ve", &sealed),
        ]),
    )
    .unwrap();
    let before = fs::read(&state).unwrap();
    let out_dir = env.dir.path().join("out");
    let readers: [&[&str]; 6] = [
        &["list"],
        &["verify"],
        &["status"],
        &["diff"],
        &["extract", "--to", out_dir.to_str().unwrap()],
        &["backup"],
    ];
    for args in readers {
        let out = env.run(args).code(1);
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(
            lines[0].contains("TPM") && lines[0].contains("crypto-util"),
            "{}",
            lines[0]
        );
    }
    let forced = env.run(&["backup", "--force"]).code(1);
    assert!(
        forced.stderr.contains(state.to_str().unwrap()),
        "{}",
        forced.stderr
    );
    assert_eq!(
        fs::read(&state).unwrap(),
        before,
        "the TPM archive was touched"
    );
    let verify = env.run(&["--json", "verify"]).code(1).json();
    assert_eq!(verify["encrypted"], "tpm");
    let banks = env.run(&["--json", "bank", "status"]).ok().json();
    assert_eq!(banks["banks"][0]["archive"]["encrypted"], "tpm");
}

/// A datagram socket standing in for /dev/log; returns what the run sent.
fn with_syslog(env: &TestEnv, args: &[&str]) -> (i32, Vec<String>) {
    let path: PathBuf = env.dir.path().join("log.sock");
    let _ = fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let out = env
        .command(args)
        .env("STATECTL_SYSLOG_SOCKET", &path)
        .output()
        .unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    (out.status.code().unwrap_or(-1), messages)
}

#[test]
fn plaintext_replaces_an_encrypted_archive_only_with_allow_plaintext() {
    let env = encrypted_host();
    let state = env.state("bootbank");
    let work = env.dir.path().join("work");
    env.run(&["extract", "--to", work.to_str().unwrap()]).ok();
    let before = fs::read(&state).unwrap();
    let pack = env.run(&[
        "pack",
        work.to_str().unwrap(),
        "--output",
        state.to_str().unwrap(),
    ]);
    let pack = pack.code(1);
    assert!(
        pack.stderr.contains(state.to_str().unwrap()),
        "{}",
        pack.stderr
    );
    assert_eq!(fs::read(&state).unwrap(), before);
    // bank sync: a plaintext next-boot archive never lands on an encrypted other bank.
    fs::copy(&state, env.state("altbootbank")).unwrap();
    fs::write(env.state("bootbank"), []).unwrap();
    env.run(&["backup", "--force", "--allow-plaintext"]).ok();
    let sync = env.run(&["bank", "sync"]).code(1);
    assert!(sync.stderr.contains("encrypted"), "{}", sync.stderr);
    assert_eq!(fs::read(env.state("altbootbank")).unwrap(), before);

    fs::write(&state, &before).unwrap();
    env.flagged("etc/hosts", "10.0.0.9 esx01\n");
    let (code, messages) = with_syslog(&env, &["backup", "--allow-plaintext"]);
    assert_eq!(code, 0);
    assert_eq!(probe(&state, &Limits::default()), Layout::Plain);
    let logged = messages
        .iter()
        .any(|m| m.contains("plaintext") && m.contains("encrypted"));
    assert!(logged, "{messages:?}");
}
