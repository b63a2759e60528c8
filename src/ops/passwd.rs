//! `passwd`: the root-password reset, done inside the archive.
//!
//! Under the lock of the archive's bank, the archive is checked in full, extracted into a
//! private (0700) temp directory in the run directory, USER's hash field of `etc/shadow` is
//! replaced (every other byte of shadow and every other file, content and metadata, is kept),
//! and the tree is packed back and renamed over the archive (an encrypted archive is encrypted
//! again with its own key store and a fresh IV). Any failure leaves the old archive untouched.
//!
//! The live host: for the default archive (no `--archive`), when the root's `etc/shadow` holds
//! the same USER line as the archive did (so the root is the host that archive saves), the live
//! file gets the same change first (atomic, its mode and owner kept, under the root lock taken
//! before the bank lock), so the next backup keeps the new hash; a failed archive rewrite puts
//! the old live file back. A root whose line differs (a rescue system) is never touched, and a
//! warning says when the next backup of this root would revert the change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha_crypt::{PasswordHasher, ShaCrypt};

use crate::archive::{open_archive, read_archive_from, ArchiveLabel, ArchiveSummary, CheckOnly};
use crate::host::Host;
use crate::lock::lock_for_writing;
use crate::lock::{lock_root, RootAccess};
use crate::ops::archive_path::archive_or_default;
use crate::ops::extract::write_entries;
use crate::ops::pack::{pack_tree, pack_tree_into_bundle};
use crate::restore::{Existing, FileMeta, Placer};

const SHADOW: &str = "etc/shadow";
/// The largest live `etc/shadow` read (a line a user: thousands of users fit many times).
const MAX_SHADOW: u64 = 16 << 20;

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
    /// The live `etc/shadow` changed too (`null` when the host was left alone).
    pub live: Option<PathBuf>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Rewrites `user`'s hash in the archive at `archive`; with `live_host` (the archive is the
/// default one) also in the root's own `etc/shadow` when it is that archive's host.
pub fn passwd(
    host: &Host,
    archive: &Path,
    user: &str,
    new: &NewPassword,
    wait: Duration,
    live_host: bool,
) -> Result<PasswdReport> {
    let bank = archive
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_user(user)
        .map_err(|reason| anyhow::anyhow!("{reason}; name the account as in etc/shadow"))?;
    let run_dir = host.run_dir()?.to_path_buf();
    // The one lock order: the root (its shadow may be written), then the bank.
    let _root = match live_host {
        true => Some(lock_root(&run_dir, &host.root, RootAccess::Write, wait)?),
        false => None,
    };
    let _lock = lock_for_writing(host, &[bank], wait)?;
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
    // A 0700 temp directory in the run directory (never on the bank), removed when dropped
    // or, after a kill, by the next run.
    let work = crate::fs::atomic::temp_dir_in(&run_dir)?;
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
        mtime: crate::clock::now_secs(),
    };
    placer.place(SHADOW, &mut updated.as_slice(), &meta)?;
    let live = LiveShadow::read(host)?
        .filter(|l| live_host && user_line(&l.bytes, user) == user_line(&current, user));
    let changed_live = match &live {
        Some(live) => Some(live.set(user, &field, meta.mtime)?),
        None => None,
    };
    let encryption = checked.encryption.as_ref();
    let label = label_of(&checked);
    let packed = match &checked.bundle {
        None => pack_tree(work.path(), archive, &label, &run_dir, encryption),
        Some(bundle) => {
            pack_tree_into_bundle(work.path(), archive, bundle, &label, &run_dir, encryption)
        }
    };
    if let Err(err) = packed {
        live.iter().for_each(LiveShadow::put_back);
        return Err(err);
    }
    let mut warnings: Vec<String> = checked.stale_manifest_warning().into_iter().collect();
    if changed_live.is_none() {
        warnings.extend(revert_warning(host, archive, user, &updated)?);
    }
    Ok(PasswdReport {
        archive: archive.to_path_buf(),
        user: user.to_string(),
        cleared: matches!(new, NewPassword::Clear),
        live: changed_live,
        warnings,
    })
}

/// The root's own `etc/shadow`, read through no link.
struct LiveShadow {
    placer: Placer,
    bytes: Vec<u8>,
    meta: FileMeta,
}

impl LiveShadow {
    /// The root's shadow; `None` when it has none (or no regular file there).
    fn read(host: &Host) -> Result<Option<LiveShadow>> {
        let placer = Placer::open(&host.root)?;
        let Existing::File { meta, .. } = placer.existing(SHADOW)? else {
            return Ok(None);
        };
        let file = placer.open_existing(SHADOW)?;
        let bytes = crate::fs::hostfile::read_capped(file, &host.root.join(SHADOW), MAX_SHADOW)?;
        Ok(Some(LiveShadow {
            placer,
            bytes,
            meta,
        }))
    }

    /// Replaces the live file atomically with `user`'s hash field set to `field`, keeping
    /// its mode and owner (mtime: the archived copy's); returns its path.
    fn set(&self, user: &str, field: &str, mtime: i64) -> Result<PathBuf> {
        let path = self.placer.root().join(SHADOW);
        let updated = set_hash_field(&self.bytes, user, field)
            .map_err(|reason| anyhow::anyhow!("{reason} in `{}`", path.display()))?;
        let meta = FileMeta { mtime, ..self.meta };
        self.placer
            .place(SHADOW, &mut updated.as_slice(), &meta)
            .context("the archive is unchanged")?;
        Ok(path)
    }

    /// Puts the old live file back (best effort: the archive rewrite failed after it changed).
    fn put_back(&self) {
        let _ = self
            .placer
            .place(SHADOW, &mut self.bytes.as_slice(), &self.meta);
    }
}

/// The warning for a change the next backup of this root would undo: the archive is the one
/// the next backup writes, and the root's shadow holds another line for `user`.
fn revert_warning(
    host: &Host,
    archive: &Path,
    user: &str,
    updated: &[u8],
) -> Result<Option<String>> {
    let Some(live) = LiveShadow::read(host)? else {
        return Ok(None);
    };
    Ok(other_line_warning(host, archive, &live, user, updated))
}

fn other_line_warning(
    host: &Host,
    archive: &Path,
    live: &LiveShadow,
    user: &str,
    updated: &[u8],
) -> Option<String> {
    let line = user_line(&live.bytes, user)?;
    if Some(line) == user_line(updated, user) {
        return None;
    }
    let default = archive_or_default(host, None).ok()?;
    let same = |p: &Path| p.canonicalize().ok();
    (same(&default)? == same(archive)?).then(|| {
        format!(
            "`{}` was left alone (its {user} line differs from the archive's, or --archive was \
             given); the next backup of this root writes its own {user} line back into `{}`",
            live.placer.root().join(SHADOW).display(),
            archive.display()
        )
    })
}

/// The first line of `shadow` for `user` (without its line break).
fn user_line<'a>(shadow: &'a [u8], user: &str) -> Option<&'a [u8]> {
    let prefix = format!("{user}:");
    shadow
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(prefix.as_bytes()))
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
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
