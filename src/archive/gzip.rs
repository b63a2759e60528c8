//! One gzip layer of an untrusted archive: every member, then stop at anything else.
//!
//! gzip files may hold several members back to back (`cat a.gz b.gz`, bgzip, some parallel
//! compressors); gzip and GNU tar read them all. Reading only the first would silently drop
//! the files of the others (they would show up only as "trailing data"), and a `passwd` or
//! `pack` round trip would then lose them. So a new member is decoded whenever the bytes after
//! one start with the gzip magic; anything else after a member is left unread for the caller
//! to report as trailing data. Every member's CRC and length are checked by flate2.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;

/// The first byte of the gzip magic (`1f 8b`); the decoder checks the second.
const GZIP_MAGIC0: u8 = 0x1f;

/// Decodes consecutive gzip members of `B`, leaving what follows the last one unread.
pub struct GzMembers<B: BufRead> {
    state: State<B>,
}

enum State<B: BufRead> {
    Member(Box<GzDecoder<B>>),
    /// Past the last member; holds the input so nothing after it is consumed.
    Done(B),
    /// Only while switching members (or after a failed switch).
    Empty,
}

impl<B: BufRead> GzMembers<B> {
    pub fn new(input: B) -> Self {
        GzMembers {
            state: State::Member(Box::new(GzDecoder::new(input))),
        }
    }

    /// After a member: starts the next one if the input continues with the gzip magic, else
    /// stops (flate2 parses a header as soon as a decoder is made, so it is only made then).
    fn next_member(&mut self) -> io::Result<()> {
        let State::Member(decoder) = std::mem::replace(&mut self.state, State::Empty) else {
            return Ok(());
        };
        let mut input = decoder.into_inner();
        let starts_member = input.fill_buf()?.first() == Some(&GZIP_MAGIC0);
        self.state = if starts_member {
            State::Member(Box::new(GzDecoder::new(input)))
        } else {
            State::Done(input)
        };
        Ok(())
    }
}

impl<B: BufRead> Read for GzMembers<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let State::Member(decoder) = &mut self.state {
            let got = decoder.read(buf)?;
            if got > 0 {
                return Ok(got);
            }
            self.next_member()?;
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn decode(input: &[u8]) -> io::Result<(Vec<u8>, usize)> {
        let mut rest = input;
        let mut members = GzMembers::new(&mut rest);
        let mut out = Vec::new();
        members.read_to_end(&mut out)?;
        drop(members);
        Ok((out, rest.len()))
    }

    #[test]
    fn reads_every_member_and_stops_at_trailing_data() {
        let mut input = gz(b"first ");
        input.extend(gz(b"second"));
        assert_eq!(decode(&input).unwrap(), (b"first second".to_vec(), 0));
        input.extend(b"\0\0junk");
        assert_eq!(decode(&input).unwrap(), (b"first second".to_vec(), 6));
    }

    #[test]
    fn a_corrupt_later_member_is_an_error() {
        let mut input = gz(b"first");
        let mut second = gz(b"second");
        let n = second.len();
        second[n - 6] ^= 0xff; // its CRC
        input.extend(second);
        assert!(decode(&input).is_err());
        assert!(decode(&[]).is_err(), "an empty file is not gzip");
    }
}
