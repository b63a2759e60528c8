//! The byte layout of a `local.tgz.ve` envelope (ESXI.md "Encrypted configuration"): the
//! 4096-byte header block with its typed attributes, the crypto footer at the end of the
//! plaintext and the AEAD footer that carries the GCM tag. Parsing is strict: a header that is
//! not exactly what packing its own attributes gives back is refused, so every header byte is
//! covered by the tag (the AAD is that re-packed header).

/// Every envelope block (header, crypto footer block, AEAD footer) is this long.
pub const BLOCK: usize = 4096;
pub const HEADER_MAGIC: &[u8] = b"DataTransformEnvelope";
pub const CRYPTO_FOOTER_MAGIC: &[u8] = b"DataTransformCryptoFooter";
pub const AEAD_FOOTER_MAGIC: &[u8] = b"DataTransformAeadFooter";
/// The only header version there is.
const HEADER_VERSION: u32 = 2;
/// The AEAD footer version ESXi writes and readers check.
const AEAD_VERSION: u32 = 1;
/// The crypto footer version statectl writes (readers do not depend on it).
const CRYPTO_VERSION: u32 = 1;
/// Size of the fixed part of the header; attributes start here.
const HEADER_FIXED: usize = 512;
/// The GCM tag length.
pub const TAG_LEN: usize = 16;

pub const TYPE_STRING: u8 = 0x0b;
pub const TYPE_BYTES: u8 = 0x0c;

/// One typed header attribute; `value` is its encoded value without the terminator (strings)
/// or the length prefix (bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u8,
    pub flag: u8,
    pub name: String,
    pub value: Vec<u8>,
}

/// A parsed header: its attributes in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub attributes: Vec<Attribute>,
}

impl Header {
    /// The value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// A string attribute's text.
    pub fn text(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            Some(a) if a.kind == TYPE_STRING => std::str::from_utf8(&a.value)
                .map_err(|_| format!("envelope attribute {name} is not UTF-8")),
            Some(_) => Err(format!("envelope attribute {name} is not a string")),
            None => Err(format!("the envelope header has no {name} attribute")),
        }
    }

    /// A bytes attribute's value.
    pub fn bytes(&self, name: &str) -> Result<&[u8], String> {
        match self.get(name) {
            Some(a) if a.kind == TYPE_BYTES => Ok(&a.value),
            Some(_) => Err(format!("envelope attribute {name} is not a byte string")),
            None => Err(format!("the envelope header has no {name} attribute")),
        }
    }

    /// Replaces (or appends) a bytes attribute.
    pub fn set_bytes(&mut self, name: &str, value: &[u8]) {
        match self.attributes.iter_mut().find(|a| a.name == name) {
            Some(attr) => {
                attr.kind = TYPE_BYTES;
                attr.value = value.to_vec();
            }
            None => self.attributes.push(Attribute {
                kind: TYPE_BYTES,
                flag: 0,
                name: name.into(),
                value: value.to_vec(),
            }),
        }
    }

    /// Parses a header block, refusing anything its own re-packing would not give back.
    pub fn parse(block: &[u8]) -> Result<Header, String> {
        if block.len() != BLOCK || !block.starts_with(HEADER_MAGIC) {
            return Err("it is not a DataTransformEnvelope (bad header magic)".into());
        }
        if le32(block, 508) != HEADER_VERSION {
            return Err(format!(
                "envelope header version {} is not supported (only 2)",
                le32(block, 508)
            ));
        }
        let header = Header {
            attributes: parse_attributes(&block[HEADER_FIXED..])?,
        };
        if header.pack()? != block {
            return Err("the envelope header is malformed (bytes outside its attributes)".into());
        }
        Ok(header)
    }

    /// The header block as ESXi computes it for the AAD: fixed part, attributes, a 4-byte
    /// terminator, zero padding to one block.
    pub fn pack(&self) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; HEADER_FIXED];
        out[..HEADER_MAGIC.len()].copy_from_slice(HEADER_MAGIC);
        for attr in &self.attributes {
            out.extend_from_slice(&[attr.kind, attr.flag, 0, 0]);
            out.extend_from_slice(attr.name.as_bytes());
            out.push(0);
            match attr.kind {
                TYPE_STRING => {
                    out.extend_from_slice(&attr.value);
                    out.push(0);
                }
                TYPE_BYTES => {
                    out.extend_from_slice(&(attr.value.len() as u64).to_le_bytes());
                    out.extend_from_slice(&attr.value);
                }
                _ => out.extend_from_slice(&attr.value),
            }
        }
        out.extend_from_slice(&[0; 4]);
        if out.len() > BLOCK {
            return Err("the envelope attributes do not fit the 4096-byte header".into());
        }
        out.resize(BLOCK, 0);
        out[504..508].copy_from_slice(&((BLOCK - HEADER_FIXED) as u32).to_le_bytes());
        out[508..512].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        Ok(out)
    }
}

/// Width of a fixed-size attribute value by type (the numeric types dissect names).
fn fixed_width(kind: u8) -> Option<usize> {
    match kind {
        0x1 | 0x5 => Some(1),
        0x2 | 0x6 => Some(2),
        0x3 | 0x7 | 0x9 => Some(4),
        0x4 | 0x8 | 0xa => Some(8),
        _ => None,
    }
}

fn parse_attributes(mut rest: &[u8]) -> Result<Vec<Attribute>, String> {
    let truncated = || "an envelope header attribute runs past the header".to_string();
    let mut attributes: Vec<Attribute> = Vec::new();
    while let Some(&kind) = rest.first() {
        if kind == 0 {
            break;
        }
        let flag = *rest.get(1).ok_or_else(truncated)?;
        rest = rest.get(4..).ok_or_else(truncated)?;
        let name = take_cstr(&mut rest).ok_or_else(truncated)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| "an envelope attribute name is not UTF-8".to_string())?;
        let value = match kind {
            TYPE_STRING => take_cstr(&mut rest).ok_or_else(truncated)?.to_vec(),
            TYPE_BYTES => {
                let len = rest.get(..8).ok_or_else(truncated)?;
                let len = u64::from_le_bytes(len.try_into().map_err(|_| truncated())?);
                let len = usize::try_from(len).map_err(|_| truncated())?;
                let value = rest
                    .get(8..8usize.saturating_add(len))
                    .ok_or_else(truncated)?;
                let value = value.to_vec();
                rest = &rest[8 + len..];
                value
            }
            other => {
                let width = fixed_width(other)
                    .ok_or_else(|| format!("unknown envelope attribute type {other:#x}"))?;
                let value = rest.get(..width).ok_or_else(truncated)?.to_vec();
                rest = &rest[width..];
                value
            }
        };
        if attributes.iter().any(|a| a.name == name) {
            return Err(format!("envelope attribute {name} appears twice"));
        }
        attributes.push(Attribute {
            kind,
            flag,
            name,
            value,
        });
    }
    Ok(attributes)
}

fn take_cstr<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == 0)?;
    let text = &rest[..end];
    *rest = &rest[end + 1..];
    Some(text)
}

fn le32(block: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&block[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The last plaintext block: zeros, then the 512-byte crypto footer naming the padding.
pub fn crypto_footer_block(padding: u32) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    let footer = &mut block[BLOCK - 512..];
    footer[..CRYPTO_FOOTER_MAGIC.len()].copy_from_slice(CRYPTO_FOOTER_MAGIC);
    footer[504..508].copy_from_slice(&padding.to_le_bytes());
    footer[508..512].copy_from_slice(&CRYPTO_VERSION.to_le_bytes());
    block
}

/// The padding the crypto footer (the last 512 bytes of the plaintext) names.
pub fn parse_crypto_footer(footer: &[u8]) -> Result<u32, String> {
    if footer.len() != 512 || !footer.starts_with(CRYPTO_FOOTER_MAGIC) {
        return Err("the envelope's crypto footer is missing or damaged".into());
    }
    Ok(le32(footer, 504))
}

/// The trailing AEAD footer block carrying `tag`.
pub fn aead_footer_block(tag: &[u8; TAG_LEN]) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    block[..AEAD_FOOTER_MAGIC.len()].copy_from_slice(AEAD_FOOTER_MAGIC);
    block[32..32 + TAG_LEN].copy_from_slice(tag);
    block[4088..4092].copy_from_slice(&(TAG_LEN as u32).to_le_bytes());
    block[4092..4096].copy_from_slice(&AEAD_VERSION.to_le_bytes());
    block
}

/// The tag an AEAD footer block carries.
pub fn parse_aead_footer(block: &[u8]) -> Result<[u8; TAG_LEN], String> {
    if block.len() != BLOCK || !block.starts_with(AEAD_FOOTER_MAGIC) {
        return Err("the envelope's AEAD footer is missing or damaged".into());
    }
    if le32(block, 4092) != AEAD_VERSION || le32(block, 4088) as usize != TAG_LEN {
        return Err("the envelope's AEAD footer has an unknown version or tag size".into());
    }
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&block[32..32 + TAG_LEN]);
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let mut header = Header {
            attributes: vec![Attribute {
                kind: TYPE_STRING,
                flag: 0,
                name: "vmware.cipherName".into(),
                value: b"AES-256-GCM".to_vec(),
            }],
        };
        header.set_bytes("vmware.iv", &[7; 12]);
        header
    }

    #[test]
    fn a_packed_header_parses_back_to_itself() {
        let block = sample().pack().unwrap();
        assert_eq!(block.len(), BLOCK);
        assert_eq!(Header::parse(&block).unwrap(), sample());
        assert_eq!(le32(&block, 504), 3584);
    }

    #[test]
    fn a_header_with_stray_bytes_or_a_bad_magic_is_refused() {
        let mut block = sample().pack().unwrap();
        block[4000] = 1;
        assert!(Header::parse(&block).is_err());
        let mut block = sample().pack().unwrap();
        block[0] ^= 1;
        assert!(Header::parse(&block).is_err());
    }

    #[test]
    fn footers_round_trip() {
        let tag = [9u8; TAG_LEN];
        assert_eq!(parse_aead_footer(&aead_footer_block(&tag)).unwrap(), tag);
        let block = crypto_footer_block(4011);
        assert_eq!(parse_crypto_footer(&block[BLOCK - 512..]).unwrap(), 4011);
    }
}
