//! The writer's side of the envelope: `local.tgz` in, `local.tgz.ve` out, as one stream of known
//! length (so it can be a tar member without being held in memory). The key comes from the key
//! store that is carried over, the header from the old envelope with only `vmware.iv` changed:
//! a fresh random 12-byte IV for every write, never one used before (reusing an IV under one
//! GCM key would expose both plaintexts and the authentication key).

use std::io::{self, Read};

use super::format::{self, Header, BLOCK};
use super::gcm::{Gcm, IV_LEN};
use super::keystore::{self, Mode};
use super::{aad_of, check_key, Encryption, ENVELOPE_NAME};

const CHUNK: usize = 64 << 10;

/// Where the sealing stream is.
enum Stage {
    Header,
    Body,
    Footer,
    Tag,
    Done,
}

/// `local.tgz.ve` as a byte stream, encrypted while it is read.
pub struct Sealing<R> {
    plain: R,
    left: u64,
    padding: u32,
    header: Vec<u8>,
    gcm: Option<Gcm>,
    stage: Stage,
    out: Vec<u8>,
    at: usize,
}

/// The length of the envelope of `plain_len` bytes: header, plaintext padded to whole blocks,
/// the crypto footer block, the AEAD footer.
pub fn sealed_len(plain_len: u64) -> u64 {
    let block = BLOCK as u64;
    let padded = plain_len.div_ceil(block) * block;
    padded + 3 * block
}

/// Starts sealing `plain` (exactly `plain_len` bytes) under the key of `encryption`.
pub fn seal<R: Read>(
    encryption: &Encryption,
    plain: R,
    plain_len: u64,
) -> Result<Sealing<R>, String> {
    let (key, mut header) = key_and_header(encryption)?;
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|err| format!("cannot get random bytes for the IV: {err}"))?;
    header.set_bytes("vmware.iv", &iv);
    let header_block = header.pack()?;
    let gcm = Gcm::new(&key, &iv, &aad_of(&header)?);
    let block = BLOCK as u64;
    let padding = ((block - plain_len % block) % block) as u32;
    Ok(Sealing {
        plain,
        left: plain_len,
        padding,
        header: header_block,
        gcm: Some(gcm),
        stage: Stage::Header,
        out: Vec::new(),
        at: 0,
    })
}

/// Whether `encryption` can be sealed again: mode `NONE`, a readable header, and the key the
/// key store derives is the one the header names.
pub fn check_sealable(encryption: &Encryption) -> Result<(), String> {
    key_and_header(encryption).map(|_| ())
}

fn key_and_header(encryption: &Encryption) -> Result<(keystore::Key, Header), String> {
    if encryption.mode == Mode::Tpm {
        let (_, name) = keystore::mode_of(&encryption.keystore)?;
        return Err(super::sealed_key_message(&name));
    }
    let header = encryption
        .header
        .clone()
        .ok_or_else(|| format!("the old {ENVELOPE_NAME} has no readable header to follow"))?;
    let (key, key_id) = keystore::derive_key(&encryption.keystore)?;
    check_key(&header, &key, &key_id)?;
    Ok((key, header))
}

impl<R: Read> Sealing<R> {
    /// The header this envelope was written with (for tests and reports).
    pub fn header(&self) -> Result<Header, String> {
        Header::parse(&self.header)
    }

    /// Produces the next piece of output into `self.out`.
    fn refill(&mut self) -> io::Result<()> {
        self.at = 0;
        self.out.clear();
        let gcm_gone = || io::Error::other("envelope stream used after its end");
        match self.stage {
            Stage::Header => {
                self.out = std::mem::take(&mut self.header);
                self.stage = Stage::Body;
            }
            Stage::Body if self.left == 0 => self.stage = Stage::Footer,
            Stage::Body => {
                let want = CHUNK.min(self.left as usize);
                self.out.resize(want, 0);
                let got = self.plain.read(&mut self.out)?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "local.tgz shrank while it was being encrypted",
                    ));
                }
                self.out.truncate(got);
                self.left -= got as u64;
                self.gcm
                    .as_mut()
                    .ok_or_else(gcm_gone)?
                    .encrypt(&mut self.out);
            }
            Stage::Footer => {
                self.out = vec![0u8; self.padding as usize];
                self.out
                    .extend_from_slice(&format::crypto_footer_block(self.padding));
                self.gcm
                    .as_mut()
                    .ok_or_else(gcm_gone)?
                    .encrypt(&mut self.out);
                self.stage = Stage::Tag;
            }
            Stage::Tag => {
                let tag = self.gcm.take().ok_or_else(gcm_gone)?.tag();
                self.out = format::aead_footer_block(&tag);
                self.stage = Stage::Done;
            }
            Stage::Done => {}
        }
        Ok(())
    }
}

impl<R: Read> Read for Sealing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            if matches!(self.stage, Stage::Done) {
                return Ok(0);
            }
            self.refill()?;
        }
        let take = buf.len().min(self.out.len() - self.at);
        buf[..take].copy_from_slice(&self.out[self.at..self.at + take]);
        self.at += take;
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_KEYSTORE: &str = ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\n\
        mode = \"NONE\"\nConfigEncData = \"keyId=fmLOxWrvTX6Di8rjLu/SUQ%3d%3d:\
        data1=Uz8MFZfqTbWN2jIHbFPhag%3d%3d:data2=IDcZE41aR+uxDv7Iz8zJSA%3d%3d:version=1\"\n";

    fn encryption() -> Encryption {
        Encryption::from_keystore(SAMPLE_KEYSTORE.as_bytes().to_vec()).unwrap()
    }

    fn sealed(plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(&encryption(), plain, plain.len() as u64)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn sealed_envelopes_open_to_the_plaintext_with_a_fresh_iv_each_time() {
        for len in [0usize, 1, 4095, 4096, 70_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let envelope = sealed(&plain);
            assert_eq!(envelope.len() as u64, sealed_len(len as u64));
            let mut spool = tempfile::tempfile().unwrap();
            io::Write::write_all(&mut spool, &envelope).unwrap();
            let (mut opened, _) =
                super::super::open(spool, envelope.len() as u64, SAMPLE_KEYSTORE.as_bytes())
                    .unwrap();
            let mut back = Vec::new();
            opened.read_to_end(&mut back).unwrap();
            assert_eq!(back, plain, "length {len}");
        }
        assert_ne!(sealed(b"same")[..BLOCK], sealed(b"same")[..BLOCK]);
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let envelope = sealed(&[5u8; 9000]);
        for at in [
            600,
            BLOCK + 10,
            envelope.len() - BLOCK + 40,
            envelope.len() - BLOCK - 3,
        ] {
            let mut bad = envelope.clone();
            bad[at] ^= 0x10;
            let mut spool = tempfile::tempfile().unwrap();
            io::Write::write_all(&mut spool, &bad).unwrap();
            let opened = super::super::open(spool, bad.len() as u64, SAMPLE_KEYSTORE.as_bytes());
            assert!(opened.is_err(), "flip at {at} accepted");
        }
    }
}
