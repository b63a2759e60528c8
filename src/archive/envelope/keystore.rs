//! `encryption.info`, the key store beside `local.tgz.ve`: `key = "value"` lines, the mode, and
//! in mode `NONE` the `ConfigEncData` record (URL-encoded base64 fields) the key is derived
//! from with PBKDF2-HMAC-SHA256 (ESXI.md "Encrypted configuration"). In any other mode the key
//! is sealed in the TPM of the host that wrote it and cannot be derived here.

use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The fixed obfuscation salt ESXi appends to `data1`.
const PASSWORD_SUFFIX: &[u8] =
    b"This is obfuscation, not encryption. If you want encryption, use TPM.";
const ITERATIONS: u32 = 100_000;
/// Largest key store accepted (a real one is under 300 bytes).
pub const MAX_KEYSTORE: u64 = 64 << 10;
/// The only cipher ESXi's configuration envelope uses.
pub const CIPHER: &str = "AES-256-GCM";

/// An AES-256 key, wiped when dropped.
pub type Key = Zeroizing<[u8; 32]>;

/// What the key store says about how the key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Mode `NONE`: the key is derived from the key store itself.
    NoneMode,
    /// Any other mode: the key is sealed in a TPM.
    Tpm,
}

impl Mode {
    /// The JSON label (`"encrypted"` field).
    pub fn label(self) -> &'static str {
        match self {
            Mode::NoneMode => "none-mode",
            Mode::Tpm => "tpm",
        }
    }
}

/// The mode named in `encryption.info` (quotes and blanks trimmed).
pub fn mode_of(text: &[u8]) -> Result<(Mode, String), String> {
    let mode = value_of(text, "mode")?.ok_or("encryption.info names no mode")?;
    Ok((
        if mode == "NONE" {
            Mode::NoneMode
        } else {
            Mode::Tpm
        },
        mode,
    ))
}

/// The key and its id (the UUID text the envelope's `vmware.keyInfo` names) of a mode-`NONE`
/// key store.
pub fn derive_key(text: &[u8]) -> Result<(Key, String), String> {
    let record =
        value_of(text, "ConfigEncData")?.ok_or("encryption.info has no ConfigEncData record")?;
    let mut key_id = None;
    let mut data1 = None;
    let mut data2 = None;
    for field in record.split(':') {
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let slot = match name.trim() {
            "keyId" => &mut key_id,
            "data1" => &mut data1,
            "data2" => &mut data2,
            _ => continue,
        };
        *slot = Some(decode_field(name.trim(), value.trim())?);
    }
    let missing = |what: &str| format!("the ConfigEncData record of encryption.info has no {what}");
    let key_id = key_id.ok_or_else(|| missing("keyId"))?;
    let data1 = Zeroizing::new(data1.ok_or_else(|| missing("data1"))?);
    let salt = data2.ok_or_else(|| missing("data2"))?;
    let uuid = uuid_text(&key_id)?;
    let mut password = Zeroizing::new(Vec::with_capacity(data1.len() + PASSWORD_SUFFIX.len()));
    password.extend_from_slice(&data1);
    password.extend_from_slice(PASSWORD_SUFFIX);
    Ok((pbkdf2_sha256(&password, &salt), uuid))
}

/// PBKDF2-HMAC-SHA256 to 32 bytes, memoized for the last (password, salt) of this process: a
/// command that reads, re-seals and reads back one archive derives its key once, not four
/// times (100,000 iterations each). The memo is one zeroizing slot, overwritten by the next key.
fn pbkdf2_sha256(password: &[u8], salt: &[u8]) -> Key {
    type Slot = Option<(Zeroizing<Vec<u8>>, Vec<u8>, Key)>;
    static LAST: Mutex<Slot> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((p, s, key)) = last.as_ref() {
        if p.as_slice() == password && s.as_slice() == salt {
            return key.clone();
        }
    }
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, key.as_mut());
    *last = Some((
        Zeroizing::new(password.to_vec()),
        salt.to_vec(),
        key.clone(),
    ));
    key
}

/// `sha256(cipherName || key)`, what the envelope's `vmware.keyHash` holds.
pub fn key_hash(key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(CIPHER.as_bytes());
    hasher.update(key);
    hasher.finalize().into()
}

/// The value of the last `name = "value"` line, as ESXi's parser (and dissect's) keeps it.
fn value_of(text: &[u8], name: &str) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "encryption.info is not UTF-8 text")?;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        if key.trim() == name {
            found = Some(value.trim_matches(|c| c == ' ' || c == '"').to_string());
        }
    }
    Ok(found)
}

fn decode_field(name: &str, value: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("the {name} field of encryption.info is not URL-encoded base64");
    let text = url_decode(value).ok_or_else(bad)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| bad())
}

fn url_decode(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Some(out)
}

/// The canonical UUID text of 16 bytes (big-endian fields, as Python's `UUID(bytes=...)`).
fn uuid_text(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() != 16 {
        return Err(format!(
            "the keyId of encryption.info is {} bytes, not a 16-byte UUID",
            bytes.len()
        ));
    }
    let hex = crate::records::hex(bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::hex;

    /// The key store published as test data with dissect.hypervisor, and the key and key hash
    /// its tests expect (a known-answer test of the derivation).
    const SAMPLE: &str = ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"NONE\"\n\
        ConfigEncData = \"keyId=fmLOxWrvTX6Di8rjLu/SUQ%3d%3d:data1=Uz8MFZfqTbWN2jIHbFPhag%3d%3d:\
        data2=IDcZE41aR+uxDv7Iz8zJSA%3d%3d:version=1\"\n";

    #[test]
    fn the_published_key_store_derives_the_published_key() {
        assert_eq!(mode_of(SAMPLE.as_bytes()).unwrap().0, Mode::NoneMode);
        let (key, id) = derive_key(SAMPLE.as_bytes()).unwrap();
        assert_eq!(id, "7e62cec5-6aef-4d7e-838b-cae32eefd251");
        assert_eq!(
            hex(key.as_ref()),
            "ae29634dca8627013f7c7cf2d05b4d5cc444d42cd4e8acbaa4fb815dda3b3066"
        );
        assert_eq!(
            hex(&key_hash(&key)),
            "7eaad9a3be03cbf5e092adc8ce04724f9b2a49785fba2533c56b7e26977b8c86"
        );
    }

    #[test]
    fn tpm_modes_and_broken_records_are_told_apart() {
        let tpm = SAMPLE.replace("\"NONE\"", "\"TPM\"");
        assert_eq!(mode_of(tpm.as_bytes()).unwrap().0, Mode::Tpm);
        assert!(mode_of(b"x = 1\n").is_err());
        let broken = SAMPLE.replace("Uz8MFZ", "U!8MFZ");
        assert!(derive_key(broken.as_bytes()).is_err());
        let short = SAMPLE.replace("fmLOxWrvTX6Di8rjLu/SUQ%3d%3d", "fmLO");
        assert!(derive_key(short.as_bytes()).is_err());
    }
}
