//! The stat cache's on-disk form: a compact binary layout, because the no-change fast path
//! loads it on every run and a JSON cache of 10,000 entries cost more to parse than the stat
//! walk it saves. Little-endian fixed-width fields, length-prefixed strings, a magic and
//! version up front and a 64-bit checksum at the end: a torn, truncated or foreign file is
//! rejected whole (the cache is advisory; rejected means "hash once and rebuild").
//!
//! Both directions stream: [`encode`] writes records borrowed from the caller (no copy of
//! them, no whole-file buffer) and [`decode`] reads through a small buffer, showing each record
//! to its caller as it goes; it keeps a [`RecordTable`] of them (and a fingerprint of each
//! stat) only when the cache stands for the archive being compared. Digests are stored as their 32 raw bytes.

use std::io::{self, BufReader, BufWriter, Read, Write};

use super::cache::{stat_print, Cache};
use crate::records::{RecordRef, RecordTable, StatKey};

const MAGIC: &[u8; 8] = b"STCACHE\x03";
const SHA_HEX: usize = 64;
const BUFFER: usize = 64 << 10;

/// The archive a cache file describes: its stat, sha256 and size.
pub struct Header<'a> {
    pub archive: &'a StatKey,
    pub archive_sha256: &'a str,
    pub archive_bytes: u64,
}

/// Writes a cache of `count` records (record `i` from `record_of(i)`, its trusted stat from
/// `stat_of(i)`) to `out`. A record `record_of` cannot give fails the write.
pub fn encode<'a>(
    out: impl Write,
    header: &Header,
    count: usize,
    record_of: impl Fn(usize) -> Option<RecordRef<'a>>,
    stat_of: impl Fn(usize) -> Option<StatKey>,
) -> io::Result<()> {
    let mut w = Summed {
        inner: BufWriter::with_capacity(BUFFER, out),
        sum: Checksum::default(),
    };
    w.put(MAGIC)?;
    w.stat(header.archive)?;
    w.string(header.archive_sha256)?;
    w.put(&header.archive_bytes.to_le_bytes())?;
    w.put(&(count as u64).to_le_bytes())?;
    for i in 0..count {
        let r = record_of(i).ok_or_else(|| io::Error::other("a record has no valid sha256"))?;
        w.string(r.path)?;
        w.put(&r.sha256)?;
        w.put(&r.size.to_le_bytes())?;
        w.put(&r.mode.to_le_bytes())?;
        w.put(&r.uid.to_le_bytes())?;
        w.put(&r.gid.to_le_bytes())?;
        w.put(&r.mtime.to_le_bytes())?;
        match stat_of(i) {
            Some(stat) => {
                w.put(&[1])?;
                w.stat(&stat)?;
            }
            None => w.put(&[0])?,
        }
    }
    let sum = w.sum.finish();
    w.inner.write_all(&sum.to_le_bytes())?;
    w.inner.flush()
}

/// Reads a cache, showing `each` every record with the stat the cache trusts for it; `None`
/// for anything malformed, truncated, damaged or followed by more bytes (what `each` was shown
/// is then void). The records and a fingerprint of each trusted stat are kept only when the
/// cache describes the archive whose stat is `archive_now` (it then stands for that archive).
pub fn decode(
    input: impl Read,
    archive_now: Option<&StatKey>,
    each: &mut dyn FnMut(&RecordRef, Option<&StatKey>),
) -> Option<Cache> {
    let mut r = Reader {
        inner: BufReader::with_capacity(BUFFER, input),
        sum: Checksum::default(),
        name: Vec::new(),
    };
    if &r.array::<8>()? != MAGIC {
        return None;
    }
    let archive = r.stat()?;
    let archive_sha256 = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let archive_bytes = r.u64()?;
    let count = usize::try_from(r.u64()?).ok()?;
    let vouched = archive_now == Some(&archive);
    // A lying count must not become an allocation: grow as entries really arrive.
    let room = if vouched { count.min(1 << 16) } else { 0 };
    let mut records = RecordTable::with_capacity(room);
    let mut stat_prints = Vec::with_capacity(room);
    let mut path = String::new();
    for _ in 0..count {
        path.clear();
        path.push_str(std::str::from_utf8(r.bytes()?).ok()?);
        let record = RecordRef {
            path: &path,
            sha256: r.array()?,
            size: r.u64()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            mtime: r.u64()? as i64,
        };
        let stat = match r.array::<1>()?[0] {
            0 => None,
            1 => Some(r.stat()?),
            _ => return None,
        };
        each(&record, stat.as_ref());
        if vouched {
            records.push(&record);
            stat_prints.push(stat_print(stat.as_ref()));
        }
    }
    let expected = r.sum.finish();
    let sum = u64::from_le_bytes(r.array()?);
    let mut rest = [0u8; 1];
    let at_end = matches!(r.inner.read(&mut rest), Ok(0));
    if sum != expected || !at_end || archive_sha256.len() != SHA_HEX {
        return None;
    }
    Some(Cache {
        archive,
        archive_sha256,
        archive_bytes,
        vouched,
        records,
        stat_prints,
    })
}

/// A writer that checksums what it writes.
struct Summed<W: Write> {
    inner: W,
    sum: Checksum,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum.update(bytes);
        self.inner.write_all(bytes)
    }

    fn string(&mut self, text: &str) -> io::Result<()> {
        self.put(&(text.len() as u32).to_le_bytes())?;
        self.put(text.as_bytes())
    }

    fn stat(&mut self, stat: &StatKey) -> io::Result<()> {
        for field in stat.fields() {
            self.put(&field.to_le_bytes())?;
        }
        Ok(())
    }
}

/// A reader that checksums what it reads.
struct Reader<R: Read> {
    inner: R,
    sum: Checksum,
    name: Vec<u8>,
}

impl<R: Read> Reader<R> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut bytes = [0u8; N];
        self.inner.read_exact(&mut bytes).ok()?;
        self.sum.update(&bytes);
        Some(bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A length-prefixed byte string, in a buffer reused from one call to the next.
    fn bytes(&mut self) -> Option<&[u8]> {
        let len = self.u32()? as usize;
        // Paths are at most 4096 bytes and hashes 64: anything longer is damage.
        if len > 4096 {
            return None;
        }
        self.name.resize(len, 0);
        self.inner.read_exact(&mut self.name).ok()?;
        self.sum.update(&self.name);
        Some(&self.name)
    }

    fn stat(&mut self) -> Option<StatKey> {
        let mut fields = [0u64; StatKey::FIELDS];
        for field in &mut fields {
            *field = self.u64()?;
        }
        Some(StatKey::from_fields(fields))
    }
}

/// A fast streaming 64-bit checksum (FNV-1a style over 8-byte words, the length mixed in at
/// the end): catches torn and truncated files, which is all an advisory cache in a private
/// directory needs.
struct Checksum {
    hash: u64,
    len: u64,
    pending: [u8; 8],
    filled: usize,
}

const PRIME: u64 = 0x0000_0100_0000_01B3;

impl Default for Checksum {
    fn default() -> Checksum {
        Checksum {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
            pending: [0; 8],
            filled: 0,
        }
    }
}

impl Checksum {
    fn mix(&mut self, word: [u8; 8]) {
        self.hash = (self.hash ^ u64::from_le_bytes(word))
            .wrapping_mul(PRIME)
            .rotate_left(29);
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.filled > 0 {
            let take = (8 - self.filled).min(bytes.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 8 {
                return;
            }
            self.filled = 0;
            self.mix(self.pending);
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]);
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    fn finish(&self) -> u64 {
        let mut hash = self.hash;
        for byte in &self.pending[..self.filled] {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
        }
        (hash ^ self.len).wrapping_mul(PRIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FileRecord;

    fn stat() -> StatKey {
        StatKey::from_fields([1, 2, 3, 4, 5, 6, 7])
    }

    fn bytes_of(records: &RecordTable, stats: &[Option<StatKey>]) -> Vec<u8> {
        let header = Header {
            archive: &stat(),
            archive_sha256: &"cd".repeat(32),
            archive_bytes: 99,
        };
        let mut out = Vec::new();
        let n = records.len();
        encode(&mut out, &header, n, |i| Some(records.get(i)), |i| stats[i]).unwrap();
        out
    }

    fn sample() -> (RecordTable, Vec<Option<StatKey>>) {
        let record = FileRecord {
            path: "etc/hosts".into(),
            sha256: "ab".repeat(32),
            size: 3,
            mode: 0o1644,
            uid: 0,
            gid: 4,
            mtime: -1,
        };
        let records = RecordTable::from_records(&[record.clone(), record]).unwrap();
        (records, vec![Some(stat()), None])
    }

    fn decode_all(bytes: &[u8], now: Option<&StatKey>) -> (Option<Cache>, Vec<Option<StatKey>>) {
        let mut seen = Vec::new();
        let cache = decode(bytes, now, &mut |_, stat| seen.push(stat.copied()));
        (cache, seen)
    }

    #[test]
    fn round_trips_and_keeps_records_only_for_the_archive_it_describes() {
        let (records, stats) = sample();
        let bytes = bytes_of(&records, &stats);
        let (cache, seen) = decode_all(&bytes, Some(&stat()));
        let cache = cache.unwrap();
        assert_eq!(seen, stats);
        assert!(cache.vouched);
        assert_eq!((cache.archive, cache.archive_bytes), (stat(), 99));
        assert_eq!(cache.records, records);
        let prints: Vec<u64> = stats.iter().map(|s| stat_print(s.as_ref())).collect();
        assert_eq!(cache.stat_prints, prints);
        let other = StatKey::from_fields([9; 7]);
        let (cache, seen) = decode_all(&bytes, Some(&other));
        let cache = cache.unwrap();
        assert_eq!(seen, stats, "the trusted stats are shown either way");
        assert!(!cache.vouched && cache.records.is_empty() && cache.stat_prints.is_empty());
    }

    #[test]
    fn any_damage_is_rejected() {
        let (records, stats) = sample();
        let bytes = bytes_of(&records, &stats);
        let now = Some(stat());
        for cut in 0..bytes.len() {
            assert!(
                decode_all(&bytes[..cut], now.as_ref()).0.is_none(),
                "cut at {cut}"
            );
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let decoded = decode_all(&damaged, now.as_ref()).0;
            assert!(decoded.is_none(), "byte {at} flipped");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode_all(&longer, now.as_ref()).0.is_none(),
            "a trailing byte"
        );
    }

    #[test]
    fn the_checksum_does_not_depend_on_how_the_bytes_are_split() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let mut whole = Checksum::default();
        whole.update(&bytes);
        let mut pieces = Checksum::default();
        for chunk in bytes.chunks(3) {
            pieces.update(chunk);
        }
        assert_eq!(whole.finish(), pieces.finish());
    }
}
