//! Encrypted configuration (docs/reference.md "Encrypted archives"): hosts whose
//! `state.tgz` holds `local.tgz.ve` + `encryption.info` as ESXi 7.0 U2+ writes it. The
//! envelopes are made with statectl's own encoder and checked by an independent reader
//! (dissect.hypervisor, through `tests/helpers/dissect_envelope.py`; ignored when missing).
//! What is refused (damage, TPM key stores, downgrades) is in `encrypted_refusals`.

use std::fs;
use std::io::Read;
use std::path::Path;

use statectl::archive::envelope::probe::{probe, Layout};
use statectl::archive::envelope::{seal, Encryption};
use statectl::archive::Limits;

use crate::testenv::{gzip, python_oracle, sh, tar_of, tree, TestEnv, ESXI_SELECTED};

/// A mode-NONE key store with fixed random-looking fields, as ESXi writes it (`%3d` for `=`).
pub(crate) fn keystore(mode: &str) -> Vec<u8> {
    format!(
        ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"{mode}\"\n\
         ConfigEncData = \"keyId=q83vASNFZ4mrze8BI0VniQ%3d%3d:data1=EjRWeJq83vASNFZ4mrze8A%3d%3d:\
         data2=ESIzRFVmd4iZqrvM3e7/AA%3d%3d:version=1\"\n"
    )
    .into_bytes()
}

/// `local_tgz` sealed as `local.tgz.ve` under the key of `keystore` (mode NONE).
pub(crate) fn envelope_of(local_tgz: &[u8], keystore: &[u8]) -> Vec<u8> {
    let encryption = Encryption::from_keystore(keystore.to_vec()).unwrap();
    let mut out = Vec::new();
    seal::seal(&encryption, local_tgz, local_tgz.len() as u64)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The bytes of member `name` of the gzip'd tar at `path`.
pub(crate) fn member(path: &Path, name: &str) -> Vec<u8> {
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
pub(crate) fn esxi_state(members: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<(&str, &[u8], u32)> = members.iter().map(|(n, b)| (*n, *b, 0o644)).collect();
    gzip(&tar_of(&files))
}

/// The esxi host, backed up once, then its archive turned into ESXi's encrypted layout.
pub(crate) fn encrypted_host() -> TestEnv {
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

pub(crate) fn encryption_of(path: &Path) -> Encryption {
    match probe(path, &Limits::default()) {
        Layout::Encrypted(encryption) => encryption,
        other => panic!("{} is not encrypted: {other:?}", path.display()),
    }
}

pub(crate) fn iv_of(path: &Path) -> Vec<u8> {
    let header = encryption_of(path)
        .header
        .expect("a readable envelope header");
    header.bytes("vmware.iv").unwrap().to_vec()
}

/// `sha256` per path of `list --json`.
pub(crate) fn listing(env: &TestEnv, archive: &Path) -> Vec<(String, String)> {
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

/// Decrypts `state` with dissect.hypervisor into `out`; fails the test when python3,
/// dissect.hypervisor or pycryptodome is missing.
pub(crate) fn dissect_decrypt(state: &Path, out: &Path) {
    python_oracle("dissect_envelope.py", &[state, out]);
}

#[test]
#[ignore = "needs python3 with dissect.hypervisor (.ci/run installs it)"]
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
        dissect_decrypt(archive, &local);
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
