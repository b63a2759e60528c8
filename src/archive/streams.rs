//! Small stream adapters for untrusted input: a shared expansion budget and a hashing reader.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

/// Marker text of the error a [`Budgeted`] reader raises, so callers can name the limit.
pub const OVER_BUDGET: &str = "expands beyond the size limit";

/// Decompressed bytes left for the whole archive (both layers share one budget).
#[derive(Debug, Clone)]
pub struct Budget {
    left: Rc<Cell<u64>>,
}

impl Budget {
    pub fn new(max: u64) -> Budget {
        Budget {
            left: Rc::new(Cell::new(max)),
        }
    }

    fn take(&self, bytes: u64) -> io::Result<()> {
        let left = self.left.get();
        if bytes > left {
            self.left.set(0);
            return Err(io::Error::other(OVER_BUDGET));
        }
        self.left.set(left - bytes);
        Ok(())
    }
}

/// Counts the bytes read against a [`Budget`] and fails once it is spent.
pub struct Budgeted<R> {
    inner: R,
    budget: Budget,
}

impl<R> Budgeted<R> {
    pub fn new(inner: R, budget: Budget) -> Self {
        Budgeted { inner, budget }
    }
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.budget.take(got as u64)?;
        Ok(got)
    }
}

/// Hashes and counts what is read through it.
pub struct HashingReader<R> {
    pub inner: R,
    /// `None`: only counts ([`HashingReader::counting`]).
    hasher: Option<Sha256>,
    pub bytes: u64,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Some(Sha256::new()),
            bytes: 0,
        }
    }

    /// A reader that only counts: its digest is all zero bytes.
    pub fn counting(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: None,
            bytes: 0,
        }
    }

    /// The sha256 of everything read so far (zero bytes when only counting).
    pub fn digest(self) -> [u8; 32] {
        self.hasher
            .map_or([0; 32], |hasher| hasher.finalize().into())
    }

    /// The lower-case hex sha256 of everything read so far.
    pub fn hex_digest(self) -> String {
        crate::records::hex(&self.digest())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..got]);
        }
        self.bytes += got as u64;
        Ok(got)
    }
}

/// Reads `reader` to its end; returns how many bytes there were and whether any was non-zero.
pub fn drain(reader: &mut impl Read) -> io::Result<(u64, bool)> {
    let mut buf = [0u8; 8192];
    let mut total = 0u64;
    let mut nonzero = false;
    loop {
        let got = match reader.read(&mut buf) {
            Ok(0) => return Ok((total, nonzero)),
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        total += got as u64;
        nonzero |= buf[..got].iter().any(|&b| b != 0);
    }
}

/// The messages of an I/O error and its sources, joined, for one-line reports.
pub fn describe_io(err: &io::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    if source.is_none() {
        source = err.get_ref().and_then(|inner| inner.source());
    }
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_enforced() {
        let budget = Budget::new(10);
        let mut a = Budgeted::new(&[0u8; 6][..], budget.clone());
        let mut b = Budgeted::new(&[0u8; 6][..], budget);
        assert_eq!(drain(&mut a).unwrap().0, 6);
        let err = drain(&mut b).unwrap_err();
        assert!(err.to_string().contains(OVER_BUDGET));
    }

    #[test]
    fn drain_reports_nonzero_tail() {
        assert_eq!(drain(&mut &[0u8, 0][..]).unwrap(), (2, false));
        assert_eq!(drain(&mut &[0u8, 7][..]).unwrap(), (2, true));
    }
}
