//! What a finished restore still has to say: restored files the next `backup` would not
//! persist (no `.#` branch, not sticky under `select = "sticky"`, not included: lost at the next
//! reboot unless the config includes them), and whether the default undo archive sits on a RAM
//! filesystem (gone at the next reboot).

use std::path::Path;

use anyhow::Result;

use crate::detect::select;
use crate::host::Host;

/// statfs magics of RAM filesystems: tmpfs, ramfs.
const RAM_MAGICS: [u64; 2] = [0x0102_1994, 0x8584_58f6];

/// The paths of `written` (root-relative) that a backup of `host` by its rules would not
/// select now, in the order given.
pub fn not_persisted<'a>(host: &Host, written: &[&'a str]) -> Result<Vec<&'a str>> {
    if written.is_empty() {
        return Ok(Vec::new());
    }
    let rules = host.selection()?;
    let selected = select(&host.root, &rules)?;
    Ok(written
        .iter()
        .copied()
        .filter(|path| selected.files.find(path).is_none())
        .collect())
}

/// The warning of one restored file the next backup drops.
pub fn not_persisted_warning(path: &str) -> String {
    format!(
        "`{path}` was restored but the next backup would not persist it (no .# branch, not \
         included): it is lost at the next reboot; add it to `include` in the config, or make \
         it an ESXi branch"
    )
}

/// Whether `dir` is on a RAM filesystem: tmpfs or ramfs by statfs, or ESXi's visorfs (every
/// path of an ESXi host outside its datastores and banks; told by the kernel's name,
/// `VMkernel`, as its magic is not published).
pub fn on_ram(dir: &Path) -> bool {
    let ram_magic =
        rustix::fs::statfs(dir).is_ok_and(|fs| RAM_MAGICS.contains(&(fs.f_type as u64)));
    let datastore = dir.starts_with("/vmfs");
    ram_magic || (kernel_is_vmkernel() && !datastore)
}

fn kernel_is_vmkernel() -> bool {
    // SAFETY: an all-zero utsname is valid; uname fills it and NUL-terminates each field.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return false;
    }
    // SAFETY: `sysname` is NUL-terminated within its array after a successful uname.
    let sysname = unsafe { std::ffi::CStr::from_ptr(name.sysname.as_ptr()) };
    sysname.to_bytes() == b"VMkernel"
}
