//! Where things are: the root, the two banks, the config file and the run directory.
//!
//! The run directory holds what must live outside the boot media: bank locks and the stat cache of
//! the no-change fast path. It is created 0700 and must be a real directory owned by us, so a
//! local user cannot plant a symlink there.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::Limits;
use crate::config::Selection;

/// The paths every command works on, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: PathBuf,
    pub bootbank: PathBuf,
    pub altbootbank: PathBuf,
    pub config: PathBuf,
    pub config_explicit: bool,
    pub run_dir: PathBuf,
    pub limits: Limits,
}

impl Host {
    /// Lays out a host from the global options; unset paths default under `root`.
    pub fn new(root: PathBuf) -> Host {
        Host {
            bootbank: root.join("bootbank"),
            altbootbank: root.join("altbootbank"),
            config: root.join("etc/statectl.toml"),
            config_explicit: false,
            run_dir: default_run_dir(),
            limits: Limits::default(),
            root,
        }
    }

    /// The selection rules from the config file (defaults when it is absent).
    pub fn selection(&self) -> Result<Selection> {
        Selection::load(&self.config, self.config_explicit)
    }

    /// The run directory, created 0700 on first use and checked to be ours; temps a killed
    /// run left there (work directories, cache temps) are removed.
    pub fn run_dir(&self) -> Result<&Path> {
        ensure_private_dir(&self.run_dir)?;
        crate::fs::atomic::remove_stale_temps(&self.run_dir)?;
        Ok(&self.run_dir)
    }

    /// Fails with a clear message when the root is not a directory.
    pub fn check_root(&self) -> Result<()> {
        match std::fs::metadata(&self.root) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => bail!(
                "root `{}` is not a directory; pass --root DIR",
                self.root.display()
            ),
            Err(err) => Err(err).with_context(|| {
                format!(
                    "cannot open root `{}`; pass --root DIR",
                    self.root.display()
                )
            }),
        }
    }
}

fn default_run_dir() -> PathBuf {
    for base in ["/run", "/var/run"] {
        if Path::new(base).is_dir() {
            return Path::new(base).join("statectl");
        }
    }
    PathBuf::from("/tmp/statectl-0")
}

fn ensure_private_dir(dir: &Path) -> Result<()> {
    match std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
    {
        Ok(()) => {}
        Err(err) => {
            return Err(err).with_context(|| {
                format!(
                    "cannot create run directory `{}`; set STATECTL_RUN_DIR to a writable place",
                    dir.display()
                )
            })
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot stat run directory `{}`", dir.display()))?;
    let euid = crate::process::effective_uid();
    if !meta.is_dir() || meta.uid() != euid || meta.permissions().mode() & 0o022 != 0 {
        bail!(
            "run directory `{}` is not a private directory owned by uid {euid}; \
             remove it or set STATECTL_RUN_DIR",
            dir.display()
        );
    }
    Ok(())
}

impl Host {
    /// The host name recorded in manifests: ESXi's `/adv/Misc/HostName` in `esx.conf`, else
    /// `etc/hostname`, else (on the real root only) the kernel's, else `localhost`.
    /// An identity file that is not a regular file (a FIFO planted there) is an error.
    pub fn hostname(&self) -> Result<String> {
        if let Some(text) = self.identity_file("etc/vmware/esx.conf")? {
            if let Some(name) = esx_conf_value(&text, "/adv/Misc/HostName") {
                return Ok(name);
            }
        }
        if let Some(text) = self.identity_file("etc/hostname")? {
            if let Some(name) = text.lines().next().map(str::trim).filter(|n| !n.is_empty()) {
                return Ok(name.to_string());
            }
        }
        if self.root == Path::new("/") {
            if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                return Ok(text.trim().to_string());
            }
        }
        Ok("localhost".to_string())
    }
}

impl Host {
    /// The text of the identity file `rel` (`esx.conf`, `hostname`, `machine-id`), read
    /// through the in-root walk (the root's links lead to the root's files; none is followed
    /// on the file itself), non-blocking, a regular file of at most 4 MiB; `None` when it is
    /// missing; an error naming it when it is something else (a FIFO, a link, too big).
    pub fn identity_file(&self, rel: &str) -> Result<Option<String>> {
        let reader = crate::fs::hostfile::RootReader::open(&self.root)?;
        let Some((file, _)) = reader.open_file(Path::new(rel))? else {
            return Ok(None);
        };
        let bytes = crate::fs::hostfile::read_capped(file, &self.root.join(rel), IDENTITY_MAX)?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Larger identity files are not read (a real `esx.conf` is tens of KiB).
pub const IDENTITY_MAX: u64 = 4 << 20;

/// A value of ESXi's `esx.conf` (`/path/key = "value"` lines).
pub fn esx_conf_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key)
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
}
