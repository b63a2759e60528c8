//! Encrypted configuration, what is refused (issue 11): a damaged envelope or key store, a
//! TPM-sealed key store, and a plaintext archive over an encrypted one without
//! `--allow-plaintext`. Each refusal is exit 1 with nothing written.

use std::fs;
use std::path::Path;

use statectl::archive::envelope::probe::{probe, Layout};
use statectl::archive::Limits;

use crate::encrypted::{encrypted_host, envelope_of, esxi_state, keystore, member};
use crate::testenv::{gzip, tar_of, tree, TestEnv};

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
    let (out, messages) = env.run_logged(&["backup", "--allow-plaintext"]);
    let code = out.code;
    assert_eq!(code, 0);
    assert_eq!(probe(&state, &Limits::default()), Layout::Plain);
    let logged = messages
        .iter()
        .any(|m| m.contains("plaintext") && m.contains("encrypted"));
    assert!(logged, "{messages:?}");
}
