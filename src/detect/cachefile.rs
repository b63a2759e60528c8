//! The stat cache's on-disk form: a compact binary layout, because the no-change fast path
//! loads it on every run and a JSON cache of 10,000 entries cost more to parse than the stat
//! walk it saves. Little-endian fixed-width fields, length-prefixed strings, a magic and
//! version up front and a 64-bit checksum at the end: a torn, truncated or foreign file is
//! rejected whole (the cache is advisory; rejected means "hash once and rebuild").

use super::cache::{Cache, CachedFile, StatKey};
use crate::archive::FileRecord;

const MAGIC: &[u8; 8] = b"STCACHE\x02";
const SHA_HEX: usize = 64;

/// Encodes a cache.
pub fn encode(cache: &Cache) -> Vec<u8> {
    let per_file: usize = cache.files.iter().map(|f| f.record.path.len() + 160).sum();
    let mut out = Vec::with_capacity(128 + per_file);
    out.extend_from_slice(MAGIC);
    put_stat(&mut out, &cache.archive);
    put_str(&mut out, &cache.archive_sha256);
    out.extend_from_slice(&cache.archive_bytes.to_le_bytes());
    out.extend_from_slice(&(cache.files.len() as u64).to_le_bytes());
    for file in &cache.files {
        let r = &file.record;
        put_str(&mut out, &r.path);
        put_str(&mut out, &r.sha256);
        out.extend_from_slice(&r.size.to_le_bytes());
        out.extend_from_slice(&r.mode.to_le_bytes());
        out.extend_from_slice(&r.uid.to_le_bytes());
        out.extend_from_slice(&r.gid.to_le_bytes());
        out.extend_from_slice(&r.mtime.to_le_bytes());
        match &file.stat {
            Some(stat) => {
                out.push(1);
                put_stat(&mut out, stat);
            }
            None => out.push(0),
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Decodes a cache; `None` for anything malformed.
pub fn decode(bytes: &[u8]) -> Option<Cache> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if checksum(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let archive = r.stat()?;
    let archive_sha256 = r.string()?;
    let archive_bytes = r.u64()?;
    let count = usize::try_from(r.u64()?).ok()?;
    // Each entry takes at least 40 bytes: a count beyond that is a lie, not an allocation.
    let mut files = Vec::with_capacity(count.min(r.0.len() / 40));
    for _ in 0..count {
        let record = FileRecord {
            path: r.string()?,
            sha256: r.string()?,
            size: r.u64()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            mtime: r.u64()? as i64,
        };
        let stat = match r.take(1)?[0] {
            0 => None,
            1 => Some(r.stat()?),
            _ => return None,
        };
        files.push(CachedFile { record, stat });
    }
    if !r.0.is_empty() || archive_sha256.len() != SHA_HEX {
        return None;
    }
    Some(Cache::from_parts(
        archive,
        archive_sha256,
        archive_bytes,
        files,
    ))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_stat(out: &mut Vec<u8>, stat: &StatKey) {
    for field in stat.fields() {
        out.extend_from_slice(&field.to_le_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn stat(&mut self) -> Option<StatKey> {
        let mut fields = [0u64; StatKey::FIELDS];
        for field in &mut fields {
            *field = self.u64()?;
        }
        Some(StatKey::from_fields(fields))
    }
}

/// A fast 64-bit checksum (FNV-1a over 8-byte words): catches torn and truncated files, which
/// is all an advisory cache in a private directory needs.
fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        hash = (hash ^ word).wrapping_mul(PRIME).rotate_left(29);
    }
    for byte in words.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cache {
        let stat = StatKey::from_fields([1, 2, 3, 4, 5, 6, 7]);
        let record = FileRecord {
            path: "etc/hosts".into(),
            sha256: "ab".repeat(32),
            size: 3,
            mode: 0o1644,
            uid: 0,
            gid: 4,
            mtime: -1,
        };
        let files = vec![
            CachedFile {
                record: record.clone(),
                stat: Some(stat),
            },
            CachedFile { record, stat: None },
        ];
        Cache::from_parts(stat, "cd".repeat(32), 99, files)
    }

    #[test]
    fn round_trips() {
        let cache = sample();
        assert_eq!(decode(&encode(&cache)), Some(cache));
    }

    #[test]
    fn any_damage_is_rejected() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "truncated at {cut}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert_eq!(decode(&damaged), None, "byte {at} flipped");
        }
    }
}
