//! Which host a state comes from: the UUID of this host and the one an archive's own identity
//! files name (`/system/uuid` of `etc/vmware/esx.conf`, else `etc/machine-id`), shared by
//! `install` and `restore`, which refuse (forceably) a state from another host.

use std::io::Read;

use anyhow::Result;

use crate::archive::{EntryKind, InnerEntry, Visitor};
use crate::host::{esx_conf_value, Host};

/// The files a host's UUID is read from, root-relative.
const ESX_CONF: &str = "etc/vmware/esx.conf";
const MACHINE_ID: &str = "etc/machine-id";
/// Larger identity files are not looked at (a real esx.conf is tens of KiB).
const IDENTITY_MAX: u64 = 4 << 20;

/// This host's UUID: `/system/uuid` in `etc/vmware/esx.conf`, else `etc/machine-id`.
pub fn host_uuid(host: &Host) -> Option<String> {
    // (A FIFO or link planted there is no identity; hostname() reports it.)
    let read = |rel: &str| host.identity_file(rel).ok().flatten();
    uuid_from(read(ESX_CONF).as_deref(), read(MACHINE_ID).as_deref())
}

fn uuid_from(esx_conf: Option<&str>, machine_id: Option<&str>) -> Option<String> {
    if let Some(uuid) = esx_conf.and_then(|text| esx_conf_value(text, "/system/uuid")) {
        return Some(uuid);
    }
    machine_id?
        .lines()
        .next()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// Keeps the archive's identity files while the reader checks the whole archive, so the UUID
/// of a bare `state.tgz` is known without a second read.
#[derive(Default)]
pub struct IdentityFiles {
    esx_conf: Option<String>,
    machine_id: Option<String>,
}

impl Visitor for IdentityFiles {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let (Ok(path), EntryKind::File) = (&entry.path, entry.meta.kind) else {
            return Ok(());
        };
        let slot = match path.as_str() {
            ESX_CONF => &mut self.esx_conf,
            MACHINE_ID => &mut self.machine_id,
            _ => return Ok(()),
        };
        let mut text = Vec::new();
        data.take(IDENTITY_MAX).read_to_end(&mut text)?;
        *slot = Some(String::from_utf8_lossy(&text).into_owned());
        Ok(())
    }
}

impl IdentityFiles {
    /// The UUID the archive comes from: its esx.conf's `/system/uuid`, else its machine-id.
    pub fn uuid(&self) -> Option<String> {
        uuid_from(self.esx_conf.as_deref(), self.machine_id.as_deref())
    }

    /// `/system/uuid` of the archive's `etc/vmware/esx.conf`, if it has one.
    pub fn esx_conf_uuid(&self) -> Option<String> {
        esx_conf_value(self.esx_conf.as_deref()?, "/system/uuid")
    }
}

/// `/system/uuid` of the host's own `etc/vmware/esx.conf`, if it has one.
pub fn esx_conf_uuid(host: &Host) -> Option<String> {
    let text = host.identity_file(ESX_CONF).ok()??;
    esx_conf_value(&text, "/system/uuid")
}
