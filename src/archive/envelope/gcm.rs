//! AES-256-GCM in streaming form (NIST SP 800-38D with a 96-bit IV): AES-CTR from counter 2 for
//! the data, GHASH over the AAD and the ciphertext for the tag. The whole-buffer AEAD APIs would
//! need the entire archive in memory; this keeps memory constant, lets the reader check the tag
//! over the ciphertext *before* it decrypts a byte, and lets the writer encrypt as it streams.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use aes::Aes256;
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use subtle::ConstantTimeEq;

use super::format::TAG_LEN;

type Ctr = ctr::Ctr32BE<Aes256>;

/// The IV length ESXi uses (and GCM's natural one).
pub const IV_LEN: usize = 12;

/// GHASH fed in pieces of any length; pads only at segment ends, as GCM does.
struct Ghash {
    hash: GHash,
    partial: [u8; 16],
    filled: usize,
}

impl Ghash {
    fn update(&mut self, mut data: &[u8]) {
        if self.filled > 0 {
            let take = (16 - self.filled).min(data.len());
            self.partial[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled < 16 {
                return;
            }
            self.hash.update(&[self.partial.into()]);
            self.filled = 0;
        }
        let whole = data.len() / 16 * 16;
        for block in data[..whole].chunks_exact(16) {
            let mut one = [0u8; 16];
            one.copy_from_slice(block);
            self.hash.update(&[one.into()]);
        }
        let rest = &data[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// Ends a segment (AAD or ciphertext): a partial block is zero-padded.
    fn end_segment(&mut self) {
        if self.filled > 0 {
            self.hash.update_padded(&self.partial[..self.filled]);
            self.filled = 0;
        }
    }
}

/// One GCM pass over an envelope: either decrypting/authenticating or encrypting.
pub struct Gcm {
    ctr: Ctr,
    ghash: Ghash,
    tag_mask: [u8; 16],
    aad_len: u64,
    data_len: u64,
}

impl Gcm {
    pub fn new(key: &[u8; 32], iv: &[u8; IV_LEN], aad: &[u8]) -> Gcm {
        let cipher = Aes256::new(key.into());
        let mut h = [0u8; 16];
        cipher.encrypt_block((&mut h).into());
        let mut j0 = [0u8; 16];
        j0[..IV_LEN].copy_from_slice(iv);
        j0[15] = 1;
        let mut tag_mask = j0;
        cipher.encrypt_block((&mut tag_mask).into());
        let mut first = j0;
        first[15] = 2;
        let mut ghash = Ghash {
            hash: GHash::new(&h.into()),
            partial: [0; 16],
            filled: 0,
        };
        ghash.update(aad);
        ghash.end_segment();
        Gcm {
            ctr: Ctr::new(key.into(), &first.into()),
            ghash,
            tag_mask,
            aad_len: aad.len() as u64,
            data_len: 0,
        }
    }

    /// Authenticates ciphertext without decrypting it (the reader's first pass).
    pub fn absorb(&mut self, ciphertext: &[u8]) {
        self.ghash.update(ciphertext);
        self.data_len += ciphertext.len() as u64;
    }

    /// Encrypts `data` in place and authenticates the result.
    pub fn encrypt(&mut self, data: &mut [u8]) {
        self.ctr.apply_keystream(data);
        self.absorb(data);
    }

    /// Decrypts `data` in place without authenticating (the tag was checked in a first pass).
    pub fn decrypt_checked(&mut self, data: &mut [u8]) {
        self.ctr.apply_keystream(data);
    }

    /// Moves the keystream to byte `offset` of the data.
    pub fn seek(&mut self, offset: u64) {
        self.ctr.seek(offset);
    }

    /// The tag over everything absorbed so far.
    pub fn tag(mut self) -> [u8; TAG_LEN] {
        self.ghash.end_segment();
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.data_len * 8).to_be_bytes());
        self.ghash.hash.update(&[lengths.into()]);
        let hash: [u8; 16] = self.ghash.hash.clone().finalize().into();
        let mut tag = [0u8; TAG_LEN];
        for (out, (a, b)) in tag.iter_mut().zip(hash.iter().zip(self.tag_mask.iter())) {
            *out = a ^ b;
        }
        tag
    }

    /// Whether the tag over everything absorbed equals `expected` (in constant time).
    pub fn verify(self, expected: &[u8; TAG_LEN]) -> bool {
        self.tag().ct_eq(expected).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST GCM test case 16 (AES-256, 96-bit IV, AAD, 60-byte plaintext), fed in odd pieces.
    #[test]
    fn matches_the_nist_vector_however_the_data_is_split() {
        let key: [u8; 32] =
            unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .try_into()
                .unwrap();
        let iv: [u8; 12] = unhex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plain = unhex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let mut data = plain.clone();
        let mut gcm = Gcm::new(&key, &iv, &aad);
        let (a, b) = data.split_at_mut(7);
        gcm.encrypt(a);
        gcm.encrypt(b);
        assert_eq!(
            crate::records::hex(&data),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        );
        let expected: [u8; 16] = unhex("76fc6ece0f4e1768cddf8853bb2d551b")
            .try_into()
            .unwrap();
        let mut check = Gcm::new(&key, &iv, &aad);
        for piece in data.chunks(13) {
            check.absorb(piece);
        }
        assert!(check.verify(&expected));
        let mut wrong = Gcm::new(&key, &iv, &aad);
        data[3] ^= 1;
        wrong.absorb(&data);
        assert!(!wrong.verify(&expected));
        data[3] ^= 1;
        let mut back = Gcm::new(&key, &iv, &aad);
        back.seek(20);
        back.decrypt_checked(&mut data[20..]);
        assert_eq!(data[20..], plain[20..]);
    }
}
