//! The encrypted inner layout of ESXi 7.0 U2 and later: `local.tgz.ve` (an AES-256-GCM
//! "DataTransformEnvelope" around `local.tgz`) beside `encryption.info` (the key store).
//! [`format`] is the byte layout, [`keystore`] the key store and key derivation, [`gcm`] the
//! streaming cipher, [`seal`] the writer's side, [`probe`] a cheap look at which layout an
//! archive has and [`guard`] the rule that an encrypted archive is never replaced by plaintext.
//!
//! # Security
//! The envelope arrives inside the untrusted outer tar. The reader spools its ciphertext to a
//! private unnamed temp file (0600, gone when closed), checks the key against the header's
//! `vmware.keyHash` and `vmware.keyInfo`, then authenticates the whole ciphertext and the
//! header (GHASH over the AAD and the ciphertext, tag compared in constant time) *before* it
//! decrypts a single byte; only then does the plaintext go to the inner-layer reader. Keys are
//! wiped when dropped (`zeroize`), and so are the AES key schedules.

pub(crate) mod format;
pub(crate) mod gcm;
pub(crate) mod guard;
pub(crate) mod keystore;
pub mod probe;
pub mod seal;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use format::{Header, BLOCK};
use gcm::{Gcm, IV_LEN};
pub use keystore::Mode;

/// The member names of the encrypted layout.
pub const ENVELOPE_NAME: &str = "local.tgz.ve";
pub const KEYSTORE_NAME: &str = "encryption.info";
/// The other name real 7.x states give the key store (public readers accept both).
pub const KEYSTORE_BRANCH_NAME: &str = ".#encryption.info";
/// What ESXi appends to the re-packed header to form the AAD (`crypto-util --aad`).
pub const AAD_SUFFIX: &[u8] = b"ESXConfiguration";
const CHUNK: usize = 64 << 10;

/// How an encrypted archive is keyed: what a writer needs to encrypt again with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub mode: Mode,
    /// `encryption.info`, byte for byte (carried over into every archive written over it).
    pub keystore: Vec<u8>,
    /// The key store's member name as found ([`KEYSTORE_NAME`] or [`KEYSTORE_BRANCH_NAME`]),
    /// kept by every rewrite.
    pub keystore_name: &'static str,
    /// The envelope header (its attributes are the template of the next one).
    pub header: Option<Header>,
}

impl Encryption {
    /// The encryption of a mode-`NONE` key store with a fresh header (keyInfo, cipherName,
    /// keyHash, iv: the attributes ESXi writes), for an archive that had no envelope yet.
    pub fn from_keystore(keystore: Vec<u8>) -> Result<Encryption, String> {
        let (key, key_id) = keystore::derive_key(&keystore)?;
        let text = |name: &str, value: &str| format::Attribute {
            kind: format::TYPE_STRING,
            flag: 0,
            name: name.into(),
            value: value.as_bytes().to_vec(),
        };
        let mut header = Header {
            attributes: vec![
                text("vmware.keyInfo", &key_id),
                text("vmware.cipherName", keystore::CIPHER),
            ],
        };
        header.set_bytes("vmware.keyHash", &keystore::key_hash(&key));
        header.set_bytes("vmware.iv", &[0; IV_LEN]);
        Ok(Encryption {
            mode: Mode::NoneMode,
            keystore,
            keystore_name: KEYSTORE_NAME,
            header: Some(header),
        })
    }

    /// The JSON `"encrypted"` value.
    pub fn label(&self) -> &'static str {
        self.mode.label()
    }
}

/// The refusal of a state that holds the key store under both names (which one is meant?).
pub fn both_keystores_message() -> String {
    format!(
        "state.tgz holds both {KEYSTORE_NAME} and {KEYSTORE_BRANCH_NAME}, so which key store \
         is meant cannot be told; remove one of them (`tar -tzvf` lists both)"
    )
}

/// The JSON `"encrypted"` value of an optional encryption.
pub fn label(encryption: Option<&Encryption>) -> Option<&'static str> {
    encryption.map(Encryption::label)
}

/// The one-line explanation every reader gives for a TPM-sealed key store.
pub fn sealed_key_message(mode: &str) -> String {
    format!(
        "its configuration is encrypted with a key sealed in the TPM of the ESXi host that wrote \
         it (encryption.info mode `{mode}`), which statectl cannot open; on that host run \
         `crypto-util envelope extract --aad ESXConfiguration local.tgz.ve local.tgz` \
         (after `tar -xzf state.tgz`) to get the plain local.tgz"
    )
}

/// The envelope's ciphertext, authenticated, decrypted as it is read (without the padding and
/// the crypto footer): what `local.tgz` is.
pub struct Opened {
    spool: File,
    gcm: Gcm,
    left: u64,
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(CHUNK as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let got = self.spool.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spooled envelope shrank",
            ));
        }
        self.gcm.decrypt_checked(&mut buf[..got]);
        self.left -= got as u64;
        Ok(got)
    }
}

/// Opens the envelope spooled in `spool` (`len` bytes) with the key store `keystore`: checks
/// the key, authenticates everything, and returns the plaintext reader and the header.
pub fn open(mut spool: File, len: u64, keystore: &[u8]) -> Result<(Opened, Header), String> {
    let (mode, name) = keystore::mode_of(keystore)?;
    if mode == Mode::Tpm {
        return Err(sealed_key_message(&name));
    }
    let (key, key_id) = keystore::derive_key(keystore)?;
    let block = BLOCK as u64;
    if len < 3 * block {
        return Err(format!(
            "{ENVELOPE_NAME} is too short ({len} bytes) to be an envelope"
        ));
    }
    let io = |err: io::Error| format!("cannot read the spooled {ENVELOPE_NAME}: {err}");
    let header_block = read_block(&mut spool, 0).map_err(io)?;
    let header = Header::parse(&header_block)?;
    let iv = check_key(&header, &key, &key_id)?;
    let tag = format::parse_aead_footer(&read_block(&mut spool, len - block).map_err(io)?)?;
    let data_len = len - 2 * block;
    let aad = aad_of(&header)?;
    let mut check = Gcm::new(&key, &iv, &aad);
    spool.seek(SeekFrom::Start(block)).map_err(io)?;
    absorb(&mut spool, data_len, &mut check).map_err(io)?;
    if !check.verify(&tag) {
        return Err(format!(
            "the authentication tag of {ENVELOPE_NAME} does not match: the archive is damaged \
             or was altered (header, ciphertext, tag or encryption.info)"
        ));
    }
    let mut last = read_block(&mut spool, block + data_len - block).map_err(io)?;
    let mut gcm = Gcm::new(&key, &iv, &aad);
    gcm.seek(data_len - block);
    gcm.decrypt_checked(&mut last);
    let padding = u64::from(format::parse_crypto_footer(&last[BLOCK - 512..])?);
    if padding > data_len - block {
        return Err(format!(
            "the crypto footer of {ENVELOPE_NAME} names an impossible padding"
        ));
    }
    spool.seek(SeekFrom::Start(block)).map_err(io)?;
    let gcm = Gcm::new(&key, &iv, &aad);
    let left = data_len - block - padding;
    Ok((Opened { spool, gcm, left }, header))
}

/// The AAD ESXi uses: the re-packed header block, then `ESXConfiguration`.
pub fn aad_of(header: &Header) -> Result<Vec<u8>, String> {
    let mut aad = header.pack()?;
    aad.extend_from_slice(AAD_SUFFIX);
    Ok(aad)
}

/// Checks that `key` is the envelope's key (cipher, key hash, key id) and returns the IV.
pub fn check_key(header: &Header, key: &[u8; 32], key_id: &str) -> Result<[u8; IV_LEN], String> {
    let cipher = header.text("vmware.cipherName")?;
    if cipher != keystore::CIPHER {
        return Err(format!(
            "envelope cipher `{cipher}` is not supported (only AES-256-GCM)"
        ));
    }
    if header.bytes("vmware.keyHash")? != keystore::key_hash(key) {
        return Err(format!(
            "the key from encryption.info does not match the key hash of {ENVELOPE_NAME} \
             (a damaged or foreign encryption.info)"
        ));
    }
    let info = header.text("vmware.keyInfo")?;
    if !info.eq_ignore_ascii_case(key_id) {
        return Err(format!(
            "{ENVELOPE_NAME} names key `{info}` but encryption.info holds key `{key_id}`"
        ));
    }
    header
        .bytes("vmware.iv")?
        .try_into()
        .map_err(|_| format!("the IV of {ENVELOPE_NAME} is not {IV_LEN} bytes"))
}

fn read_block(file: &mut File, offset: u64) -> io::Result<Vec<u8>> {
    let mut block = vec![0u8; BLOCK];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut block)?;
    Ok(block)
}

fn absorb(file: &mut File, mut left: u64, gcm: &mut Gcm) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = buf.len().min(left as usize);
        file.read_exact(&mut buf[..want])?;
        gcm.absorb(&buf[..want]);
        left -= want as u64;
    }
    Ok(())
}
