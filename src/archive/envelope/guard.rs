//! The no-downgrade rule (docs/reference.md "Encrypted archives"): an archive written over an
//! encrypted one is encrypted again with the same key store, and a plaintext one replaces it
//! only when the caller was told `--allow-plaintext`; an encrypted archive whose key cannot be
//! had (TPM-sealed, or a damaged key store) is never replaced otherwise.

use std::path::Path;

use anyhow::{bail, Result};

use super::probe::{probe, Layout};
use super::seal::check_sealable;
use super::Encryption;
use crate::archive::Limits;

/// How the archive that replaces `target` is to be written.
#[derive(Debug, Clone)]
pub enum Replacement {
    /// Plain `local.tgz` (the old one was plain, missing or unreadable as an archive).
    Plain,
    /// Encrypted again, with the old key store and key.
    Encrypted(Encryption),
    /// Plain over an encrypted archive, as `--allow-plaintext` asked (the caller logs it).
    Downgrade,
}

/// Decides how to write over `target`.
pub fn replacement_for(
    target: &Path,
    allow_plaintext: bool,
    limits: &Limits,
) -> Result<Replacement> {
    let Layout::Encrypted(encryption) = probe(target, limits) else {
        return Ok(Replacement::Plain);
    };
    if allow_plaintext {
        return Ok(Replacement::Downgrade);
    }
    if let Err(reason) = check_sealable(&encryption) {
        bail!(
            "archive `{}` is encrypted and cannot be encrypted again ({reason}); statectl never \
             replaces an encrypted archive with a plaintext one: pass --allow-plaintext to do so \
             on purpose",
            target.display()
        );
    }
    Ok(Replacement::Encrypted(encryption))
}

/// The encryption for the archive that replaces `target` (`None`: plain), and the warning a
/// downgrade asked for with `allow_plaintext` gets (callers show it; warnings go to syslog).
pub fn keep_encryption(
    target: &Path,
    allow_plaintext: bool,
    limits: &Limits,
) -> Result<(Option<Encryption>, Option<String>)> {
    Ok(match replacement_for(target, allow_plaintext, limits)? {
        Replacement::Encrypted(encryption) => (Some(encryption), None),
        Replacement::Plain => (None, None),
        Replacement::Downgrade => (
            None,
            Some(format!(
                "replacing encrypted archive `{}` with a plaintext one (--allow-plaintext)",
                target.display()
            )),
        ),
    })
}

/// Refuses to put a plaintext archive over `target` when it is encrypted, unless
/// `allow_plaintext`; returns whether `target` was encrypted (a downgrade to log). `hint` says
/// what to do instead.
pub fn check_plaintext_over(
    target: &Path,
    allow_plaintext: bool,
    hint: &str,
    limits: &Limits,
) -> Result<bool> {
    let encrypted = matches!(probe(target, limits), Layout::Encrypted(_));
    if encrypted && !allow_plaintext {
        bail!(
            "archive `{}` is encrypted; statectl never replaces an encrypted archive with a \
             plaintext one ({hint})",
            target.display()
        );
    }
    Ok(encrypted)
}
