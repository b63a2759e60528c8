//! Deterministic gzip writers: a pigz-style parallel one for the inner layer and, for the outer
//! layer, one that stores `local.tgz` and deflates only the manifest.
//!
//! [`ParallelGzip`] cuts its input into fixed [`BLOCK`]-byte blocks and deflates each one on its
//! own, primed with the last 32 KiB of the block before it (so the ratio stays within a fraction
//! of a percent of one stream) and ended with a sync flush; the final, partial block is ended with
//! `Finish`. Each block's bytes depend only on that block, its predecessor's tail and the level,
//! never on the number of threads or their timing: the same input gives the same bytes on any
//! machine. The result is one ordinary gzip member that GNU tar, busybox and zlib read. Memory is
//! bounded: one batch of blocks in and out at a time.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per independently deflated block.
pub const BLOCK: usize = 256 << 10;
/// The deflate window: how much of the previous block primes the next.
const WINDOW: usize = 32 << 10;
/// Blocks per thread in one batch.
const BLOCKS_PER_THREAD: usize = 4;
/// Never more threads than this (deflate of config text scales no further usefully here).
const MAX_THREADS: usize = 4;

/// The fixed gzip header: no name, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Threads to deflate with: the CPUs available, at most [`MAX_THREADS`].
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
}

/// A gzip writer that deflates fixed-size blocks on several threads.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: Compression,
    threads: usize,
    pending: Vec<u8>,
    /// The last [`WINDOW`] bytes before `pending`.
    dict: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        ParallelGzip {
            out,
            level: Compression::new(level),
            threads,
            pending: Vec::with_capacity(threads * BLOCKS_PER_THREAD * BLOCK),
            dict: Vec::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    fn batch_bytes(&self) -> usize {
        self.threads * BLOCKS_PER_THREAD * BLOCK
    }

    /// Deflates the pending input: all whole blocks, plus the partial tail when `last`.
    fn flush_blocks(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        let whole = self.pending.len() / BLOCK * BLOCK;
        let mut jobs: Vec<(&[u8], &[u8], FlushCompress)> = Vec::new();
        let mut dict: &[u8] = &self.dict;
        for block in self.pending[..whole].chunks(BLOCK) {
            jobs.push((dict, block, FlushCompress::Sync));
            dict = &block[BLOCK - WINDOW..];
        }
        if last {
            jobs.push((dict, &self.pending[whole..], FlushCompress::Finish));
        }
        let outputs = deflate_all(&jobs, self.level, self.threads)?;
        for output in outputs {
            self.out.write_all(&output)?;
        }
        let tail_start = whole.saturating_sub(WINDOW);
        if whole > 0 {
            self.dict.clear();
            self.dict
                .extend_from_slice(&self.pending[tail_start..whole]);
        }
        self.pending.drain(..whole);
        Ok(())
    }

    /// Ends the stream (last block, CRC and length) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_blocks(true)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.batch_bytes() - self.pending.len();
        let take = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..take]);
        self.crc.update(&buf[..take]);
        if self.pending.len() == self.batch_bytes() {
            self.flush_blocks(false)?;
        }
        Ok(take)
    }

    /// Only flushes the inner writer: blocks stay whole so the bytes do not depend on flushes.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Deflates each `(dictionary, block, flush)` job; jobs are split into contiguous runs, one per
/// thread, and the outputs come back in job order.
fn deflate_all(
    jobs: &[(&[u8], &[u8], FlushCompress)],
    level: Compression,
    threads: usize,
) -> io::Result<Vec<Vec<u8>>> {
    if threads <= 1 || jobs.len() <= 1 {
        let mut compress = Compress::new(level, false);
        return jobs
            .iter()
            .map(|job| deflate_block(&mut compress, *job))
            .collect();
    }
    let per_thread = jobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .map(|run| {
                scope.spawn(move || {
                    let mut compress = Compress::new(level, false);
                    run.iter()
                        .map(|job| deflate_block(&mut compress, *job))
                        .collect::<io::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut outputs = Vec::with_capacity(jobs.len());
        for handle in handles {
            let run = handle
                .join()
                .map_err(|_| io::Error::other("a deflate thread failed"))??;
            outputs.extend(run);
        }
        Ok(outputs)
    })
}

/// Deflates one block as raw deflate, primed with `dict`, ended with `flush`.
fn deflate_block(
    compress: &mut Compress,
    (dict, block, flush): (&[u8], &[u8], FlushCompress),
) -> io::Result<Vec<u8>> {
    compress.reset();
    if !dict.is_empty() {
        compress.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() + block.len() / 8 + 64);
    let start = compress.total_in();
    loop {
        let done = (compress.total_in() - start) as usize;
        let status = compress
            .compress_vec(&block[done..], &mut out, flush)
            .map_err(io::Error::other)?;
        let consumed = (compress.total_in() - start) as usize == block.len();
        let finished = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => consumed && out.len() < out.capacity(),
        };
        if finished {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// Largest payload of one stored deflate block.
const STORED_MAX: usize = 65_535;

/// The outer layer's gzip writer: what is written first is stored (the already-compressed
/// `local.tgz`: deflating it costs time and adds bytes), and after [`Self::compress_rest`]
/// everything is deflated (the manifest). Single-threaded and deterministic.
pub struct OuterGzip<W: Write> {
    out: W,
    /// `None` while storing.
    compress: Option<Compress>,
    crc: Crc,
    /// Stored-mode input not yet emitted, or compressed-mode output scratch.
    buf: Vec<u8>,
}

impl<W: Write> OuterGzip<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(OuterGzip {
            out,
            compress: None,
            crc: Crc::new(),
            buf: Vec::with_capacity(STORED_MAX),
        })
    }

    /// Deflates everything written from now on at `level`.
    pub fn compress_rest(&mut self, level: u32) -> io::Result<()> {
        self.emit_stored(false)?;
        self.compress = Some(Compress::new(Compression::new(level), false));
        Ok(())
    }

    /// Writes the buffered input as one stored block (none when empty, unless `last`).
    fn emit_stored(&mut self, last: bool) -> io::Result<()> {
        if self.buf.is_empty() && !last {
            return Ok(());
        }
        let len = self.buf.len() as u16;
        let [lo, hi] = len.to_le_bytes();
        self.out.write_all(&[u8::from(last), lo, hi, !lo, !hi])?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Feeds `input` through deflate with `flush`, writing all output produced.
    fn deflate(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<()> {
        let Some(compress) = self.compress.as_mut() else {
            return Ok(());
        };
        let start = compress.total_in();
        loop {
            self.buf.clear();
            let done = (compress.total_in() - start) as usize;
            let status = compress
                .compress_vec(&input[done..], &mut self.buf, flush)
                .map_err(io::Error::other)?;
            self.out.write_all(&self.buf)?;
            let consumed = (compress.total_in() - start) as usize == input.len();
            let room_left = self.buf.len() < self.buf.capacity();
            match flush {
                FlushCompress::Finish if status == Status::StreamEnd => return Ok(()),
                FlushCompress::Finish => {}
                _ if consumed && room_left => return Ok(()),
                _ => {}
            }
        }
    }

    /// Ends the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.compress.is_some() {
            self.deflate(&[], FlushCompress::Finish)?;
        } else {
            self.emit_stored(true)?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for OuterGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = if self.compress.is_some() {
            self.deflate(buf, FlushCompress::None)?;
            buf.len()
        } else {
            let take = buf.len().min(STORED_MAX - self.buf.len());
            self.buf.extend_from_slice(&buf[..take]);
            if self.buf.len() == STORED_MAX {
                self.emit_stored(false)?;
            }
            take
        };
        self.crc.update(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn text(len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        let mut n: u64 = 1;
        while data.len() < len {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let line = format!("<option id=\"{}\" value=\"{:x}\"/>\n", n % 977, n >> 52);
            data.extend_from_slice(line.as_bytes());
        }
        data.truncate(len);
        data
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn parallel(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new(), 6, threads);
        for piece in data.chunks(chunk) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn parallel_output_round_trips_and_ignores_thread_count_and_write_sizes() {
        for len in [0, 1, BLOCK, BLOCK * 3 + 17, BLOCK * 9 * 4 + 5] {
            let data = text(len);
            let one = parallel(&data, 1, 1000);
            assert_eq!(gunzip(&one), data, "len {len}");
            assert_eq!(parallel(&data, 2, 7777), one, "len {len}");
            assert_eq!(parallel(&data, 3, BLOCK * 5), one, "len {len}");
        }
    }

    #[test]
    fn parallel_ratio_is_close_to_one_stream() {
        let data = text(BLOCK * 16);
        let ours = parallel(&data, 2, 65536).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(ours * 100 <= single * 102, "{ours} vs {single}");
    }

    #[test]
    fn stored_then_compressed_round_trips() {
        let data = text(300_000);
        let mut gz = OuterGzip::new(Vec::new()).unwrap();
        gz.write_all(&data[..200_000]).unwrap();
        gz.compress_rest(6).unwrap();
        gz.write_all(&data[200_000..]).unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(gunzip(&bytes), data);
        assert!(bytes.len() < 200_000 + 50_000, "{}", bytes.len());
        let mut stored = OuterGzip::new(Vec::new()).unwrap();
        stored.write_all(&data).unwrap();
        assert_eq!(gunzip(&stored.finish().unwrap()), data);
        assert_eq!(
            gunzip(&OuterGzip::new(Vec::new()).unwrap().finish().unwrap()),
            b""
        );
    }
}
