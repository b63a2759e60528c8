//! `passwd`: the root-password reset, done inside the archive.
//!
//! Under the lock of the archive's bank, the archive is checked in full, extracted into a
//! private (0700) temp directory in the run directory, USER's hash field of `etc/shadow` is
//! replaced (every other byte of shadow and every other file, content and metadata, is kept),
//! and the tree is packed back and renamed over the archive (an encrypted archive is encrypted
//! again with its own key store and a fresh IV). Any failure leaves the old archive untouched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha_crypt::{PasswordHasher, ShaCrypt};

use crate::archive::{open_archive, read_archive_from, ArchiveLabel, ArchiveSummary, CheckOnly};
use crate::bank::lock_banks;
use crate::host::Host;
use crate::ops::extract::write_entries;
use crate::ops::pack::pack_tree;
use crate::restore::{FileMeta, Placer};

const SHADOW: &str = "etc/shadow";

/// The new value of the hash field.
#[derive(Debug, Clone)]
pub enum NewPassword {
    /// An empty field: log in without a password, then set one.
    Clear,
    /// A password to hash with SHA-512 crypt and a random salt.
    Plain(String),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PasswdReport {
    pub archive: PathBuf,
    pub user: String,
    pub cleared: bool,
}

/// Rewrites `user`'s hash in the archive at `archive`.
pub fn passwd(
    host: &Host,
    archive: &Path,
    user: &str,
    new: &NewPassword,
    wait: Duration,
) -> Result<PasswdReport> {
    let bank = archive
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_user(user)
        .map_err(|reason| anyhow::anyhow!("{reason}; name the account as in etc/shadow"))?;
    let run_dir = host.run_dir()?.to_path_buf();
    let _lock = lock_banks(&run_dir, &[bank], wait)?;
    let file = open_archive(archive)?;
    let clone = file
        .try_clone()
        .with_context(|| format!("cannot reopen `{}`", archive.display()))?;
    let checked = read_archive_from(clone, archive, &host.limits, &mut CheckOnly)?;
    checked.ensure_safe()?;
    let Some(shadow) = checked.files.iter().find(|f| f.path == SHADOW) else {
        bail!(
            "archive `{}` holds no {SHADOW}; nothing to reset (the archive is unchanged)",
            archive.display()
        );
    };
    let field = match new {
        NewPassword::Clear => String::new(),
        NewPassword::Plain(password) => sha512_crypt(password)?,
    };
    let work = private_work_dir(&run_dir)?;
    let placer = Placer::open(work.path())?;
    write_entries(file, &checked, archive, &placer, &host.limits)?;
    let current =
        std::fs::read(work.path().join(SHADOW)).context("cannot read the extracted shadow")?;
    let updated = set_hash_field(&current, user, &field).map_err(|reason| {
        anyhow::anyhow!(
            "{reason} in {SHADOW} of `{}` (the archive is unchanged)",
            archive.display()
        )
    })?;
    let meta = FileMeta {
        mode: shadow.mode,
        uid: shadow.uid,
        gid: shadow.gid,
        mtime: crate::detect::now_secs(),
    };
    placer.place(SHADOW, &mut updated.as_slice(), &meta)?;
    let encryption = checked.encryption.as_ref();
    pack_tree(
        work.path(),
        archive,
        &label_of(&checked),
        &run_dir,
        encryption,
    )?;
    Ok(PasswdReport {
        archive: archive.to_path_buf(),
        user: user.to_string(),
        cleared: matches!(new, NewPassword::Clear),
    })
}

/// A 0700 directory in the run directory (never on the bank), removed when dropped.
fn private_work_dir(run_dir: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("passwd-")
        .tempdir_in(run_dir)
        .with_context(|| {
            format!(
                "cannot create a private work directory in `{}`",
                run_dir.display()
            )
        })
}

/// The manifest's host and build, kept as they were (empty without a manifest).
fn label_of(checked: &ArchiveSummary) -> ArchiveLabel {
    match &checked.manifest {
        Some(manifest) => ArchiveLabel {
            host: manifest.host.clone(),
            build: manifest.build.clone(),
        },
        None => ArchiveLabel::default(),
    }
}

/// A SHA-512 crypt (`$6$salt$hash`) of `password` with a random salt, in the form glibc and
/// `openssl passwd -6` write for the default 5000 rounds.
pub fn sha512_crypt(password: &str) -> Result<String> {
    // 12 random bytes encode to the 16 salt characters SHA-crypt uses at most.
    let mut salt = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut salt))
        .context("cannot read random bytes for the salt from /dev/urandom")?;
    let hash = ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("cannot hash the password: {err}"))?
        .to_string();
    Ok(hash.replacen("$rounds=5000$", "$", 1))
}

/// Refuses names that cannot be a shadow login: `root:x` would match the line `root:x:...`
/// and rewrite its third field instead.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.contains([':', '\n', '\r']) {
        return Err(format!(
            "`{}` is not a user name (empty, or holds `:` or a line break)",
            user.escape_debug()
        ));
    }
    Ok(())
}

/// Replaces the second field of `user`'s line, keeping every other byte.
pub fn set_hash_field(shadow: &[u8], user: &str, field: &str) -> Result<Vec<u8>, String> {
    check_user(user)?;
    let prefix = format!("{user}:");
    let mut out = Vec::with_capacity(shadow.len() + field.len());
    let mut found = false;
    for line in shadow.split_inclusive(|&b| b == b'\n') {
        if !found && line.starts_with(prefix.as_bytes()) {
            let rest = &line[prefix.len()..];
            let end = rest
                .iter()
                .position(|&b| b == b':' || b == b'\n')
                .unwrap_or(rest.len());
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(&rest[end..]);
            found = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    if !found {
        return Err(format!("no user `{user}`"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_users_hash_field_changes() {
        let shadow = b"root:$6$a$b:19000:0:99999:7:::\nuser:$6$c$d:19000:0:99999:7:::\r\nlast:x:1";
        let cleared = set_hash_field(shadow, "user", "").unwrap();
        assert_eq!(
            cleared,
            b"root:$6$a$b:19000:0:99999:7:::\nuser::19000:0:99999:7:::\r\nlast:x:1".to_vec()
        );
        let last = set_hash_field(shadow, "last", "NEW").unwrap();
        assert!(last.ends_with(b"last:NEW:1"));
        assert!(set_hash_field(shadow, "roo", "x").is_err());
        for bad in ["root:$6$a", "", "last:x", "a\nroot"] {
            assert!(set_hash_field(shadow, bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_sha512_crypt_with_a_fresh_salt() {
        let a = sha512_crypt("secret").unwrap();
        let b = sha512_crypt("secret").unwrap();
        assert!(a.starts_with("$6$") && !a.contains("rounds="), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.split('$').count(), 4);
        assert_eq!(a.split('$').nth(2).unwrap().len(), 16, "{a}");
    }
}
