//! A cheap look at an archive's inner layout: walks only the outer tar (no inner gzip, no
//! decryption) until it knows whether `local.tgz` or `local.tgz.ve` + `encryption.info` (or
//! `.#encryption.info`) is there; an encrypted one is walked to its end, so a key store under
//! both names is always seen. Writers use it to keep an archive encrypted (or to refuse to replace it), and the
//! reports use it to say `"encrypted"` without a full read.

use std::io::{BufReader, Read};
use std::path::Path;

use super::format::{Header, BLOCK};
use super::keystore::{self, MAX_KEYSTORE};
use super::{Encryption, ENVELOPE_NAME, KEYSTORE_BRANCH_NAME, KEYSTORE_NAME};
use crate::archive::entries::{walk, WalkError};
use crate::archive::gzip::GzMembers;
use crate::archive::names::normalize_member_name;
use crate::archive::streams::{Budget, Budgeted};
use crate::archive::{Limits, INNER_NAME};

/// What the outer layer of an archive shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// No file there.
    Missing,
    /// `local.tgz`.
    Plain,
    /// `local.tgz.ve` and/or `encryption.info` (the key store may be missing or unreadable:
    /// then `keystore` is empty and the mode is what [`keystore::mode_of`] could tell).
    Encrypted(Encryption),
    /// The key store under both names: no writer may replace it, no reader opens it; why.
    Conflict(String),
    /// Neither could be found; why.
    Unknown(String),
}

impl Layout {
    /// The JSON `"encrypted"` value.
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Layout::Encrypted(encryption) => Some(encryption.label()),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Seen {
    plain: bool,
    envelope: bool,
    keystore: Option<Vec<u8>>,
    keystore_name: Option<&'static str>,
    both_names: bool,
    header: Option<Header>,
}

/// The layout of the archive at `path`.
pub fn probe(path: &Path, limits: &Limits) -> Layout {
    let file = match crate::fs::hostfile::open_regular(path) {
        Ok(Some((file, _))) => file,
        Ok(None) => return Layout::Missing,
        Err(err) => return Layout::Unknown(format!("cannot open it: {err:#}")),
    };
    let mut seen = Seen::default();
    let mut buffered = BufReader::with_capacity(64 << 10, file);
    let gz = Budgeted::new(
        GzMembers::new(&mut buffered),
        Budget::new(limits.max_expanded),
    );
    let walked = walk(gz, limits, "state.tgz", |meta, data| {
        let name = normalize_member_name(&meta.raw_name).unwrap_or_default();
        match name.as_str() {
            INNER_NAME => seen.plain = true,
            ENVELOPE_NAME => {
                seen.envelope = true;
                let mut block = Vec::with_capacity(BLOCK);
                data.take(BLOCK as u64)
                    .read_to_end(&mut block)
                    .map_err(other)?;
                seen.header = Header::parse(&block).ok();
            }
            KEYSTORE_NAME | KEYSTORE_BRANCH_NAME => {
                let found = if name == KEYSTORE_NAME {
                    KEYSTORE_NAME
                } else {
                    KEYSTORE_BRANCH_NAME
                };
                seen.both_names |= seen.keystore_name.is_some_and(|known| known != found);
                seen.keystore_name = Some(found);
                if meta.size <= MAX_KEYSTORE {
                    let mut text = Vec::with_capacity(meta.size as usize);
                    data.read_to_end(&mut text).map_err(other)?;
                    seen.keystore = Some(text);
                }
            }
            _ => {}
        }
        if seen.plain {
            return Err(WalkError::Format(STOP.into()));
        }
        Ok(())
    });
    match walked {
        Ok(_) => {}
        Err(WalkError::Format(reason)) if reason == STOP => {}
        Err(WalkError::Format(reason)) if !seen.plain && !seen.envelope => {
            return Layout::Unknown(reason)
        }
        Err(_) => {}
    }
    layout_of(seen)
}

/// Marks the walk stopped on purpose.
const STOP: &str = "layout known";

fn other(err: std::io::Error) -> WalkError {
    WalkError::Format(err.to_string())
}

fn layout_of(seen: Seen) -> Layout {
    if seen.both_names {
        return Layout::Conflict(super::both_keystores_message());
    }
    if seen.envelope || seen.keystore.is_some() {
        let keystore = seen.keystore.unwrap_or_default();
        let mode = match keystore::mode_of(&keystore) {
            Ok((mode, _)) => mode,
            Err(_) => keystore::Mode::NoneMode,
        };
        return Layout::Encrypted(Encryption {
            mode,
            keystore,
            keystore_name: seen.keystore_name.unwrap_or(KEYSTORE_NAME),
            header: seen.header,
        });
    }
    if seen.plain {
        return Layout::Plain;
    }
    Layout::Unknown(format!("it holds neither {INNER_NAME} nor {ENVELOPE_NAME}"))
}
