//! The second read of a writer (`extract`, `restore`) with inflating overlapped with writing: a
//! reader thread runs [`reread_archive_from`] (both gzip layers, every check, the sha256 of the
//! whole archive) and hands each entry's header and content to the calling thread, which runs
//! the visitor (the writes), through a bounded channel.
//!
//! Nothing changes for the visitor: it sees the same entries in the same order, and content it
//! leaves unread is skipped. Memory is bounded by the channel: at most [`DEPTH`] batches of about
//! [`PIECE`] bytes are in flight (a large file comes as several pieces), and entries are handed
//! over in batches, so the two threads wake each other once per batch, not once per file. A read error
//! reaches the visitor as an error of its `data` (never as a short file) and is reported as the
//! reader's own error; a visitor error stops the reader at its next piece.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::{anyhow, Result};

use super::{reread_archive_from, ArchiveSummary, InnerEntry, Visitor};
use crate::archive::Limits;

/// Content bytes per piece, and the bytes a batch of pieces gathers before it is sent: one
/// piece holds a typical config file whole, and a batch some dozens of them (one hand-over, not
/// one per file).
const PIECE: usize = 64 << 10;
/// Pieces in one batch at most (small files and directories carry little content).
const BATCH: usize = 256;
/// Batches in flight between the reader and the writer (at most about 1 MiB of content).
const DEPTH: usize = 8;

/// Part of an entry: its header with the first piece, then further pieces; `last` ends it.
struct Piece {
    entry: Option<Box<InnerEntry>>,
    bytes: Vec<u8>,
    last: bool,
}

/// [`reread_archive_from`] in a reader thread, with `visitor` run on this thread.
pub fn reread_ahead(
    file: std::fs::File,
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<ArchiveSummary> {
    let (tx, rx) = sync_channel(DEPTH);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("archive reader".into())
            .spawn_scoped(scope, move || {
                let mut forward = Forward {
                    tx,
                    batch: Vec::new(),
                    batched: 0,
                };
                let read = reread_archive_from(file, path, limits, &mut forward);
                // What is batched is whole entries (or the pieces of one before a read error).
                forward.send().and(read)
            })
            .map_err(|err| anyhow!("cannot start the archive reader: {err}"))?;
        let fed = feed(
            Batches {
                rx,
                batch: VecDeque::new(),
            },
            visitor,
        );
        let read = match reader.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match fed {
            // The visitor failed on its own: the reader only stopped because of it.
            Err(Fed::Visitor(err)) => Err(err),
            // The reader stopped first: its error is the cause.
            Err(Fed::Cut) => read.and(Err(anyhow!("the archive reader stopped early"))),
            Ok(()) => read,
        }
    })
}

enum Fed {
    Visitor(anyhow::Error),
    /// The reader hung up part way through an entry.
    Cut,
}

/// The pieces as they arrive, a batch at a time.
struct Batches {
    rx: Receiver<Vec<Piece>>,
    batch: VecDeque<Piece>,
}

impl Batches {
    /// The next piece; `None` once the reader is done (or gone).
    fn next(&mut self) -> Option<Piece> {
        while self.batch.is_empty() {
            self.batch = self.rx.recv().ok()?.into();
        }
        self.batch.pop_front()
    }
}

/// Runs `visitor` on every entry the reader sends until it is done.
fn feed(mut batches: Batches, visitor: &mut dyn Visitor) -> Result<(), Fed> {
    while let Some(first) = batches.next() {
        let Some(entry) = first.entry else {
            return Err(Fed::Cut);
        };
        let mut data = Pieces {
            batches: &mut batches,
            bytes: first.bytes,
            at: 0,
            last: first.last,
            cut: false,
        };
        let visited = visitor.entry(&entry, &mut data);
        if data.cut {
            return Err(Fed::Cut);
        }
        visited.map_err(Fed::Visitor)?;
        io::copy(&mut data, &mut io::sink()).map_err(|_| Fed::Cut)?;
    }
    Ok(())
}

/// One entry's content as it arrives.
struct Pieces<'a> {
    batches: &'a mut Batches,
    bytes: Vec<u8>,
    at: usize,
    last: bool,
    /// The reader hung up before the entry's last piece.
    cut: bool,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.bytes.len() {
            if self.last {
                return Ok(0);
            }
            match self.batches.next() {
                Some(piece) if piece.entry.is_none() => {
                    (self.bytes, self.at, self.last) = (piece.bytes, 0, piece.last);
                }
                _ => {
                    self.cut = true;
                    return Err(io::Error::other("the archive read stopped"));
                }
            }
        }
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The reader thread's visitor: sends each entry on, in pieces gathered into batches.
struct Forward {
    tx: SyncSender<Vec<Piece>>,
    batch: Vec<Piece>,
    /// Content bytes in `batch`.
    batched: usize,
}

impl Forward {
    /// Sends the batch gathered so far (nothing when it is empty).
    fn send(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batched = 0;
        self.tx
            .send(std::mem::take(&mut self.batch))
            .map_err(|_| anyhow!("the archive's writer stopped"))
    }
}

impl Visitor for Forward {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let mut header = Some(Box::new(entry.clone()));
        loop {
            let room = usize::try_from(entry.meta.size).map_or(PIECE, |size| size.min(PIECE));
            let mut bytes = Vec::with_capacity(room);
            data.take(PIECE as u64).read_to_end(&mut bytes)?;
            let last = bytes.len() < PIECE;
            self.batched += bytes.len();
            self.batch.push(Piece {
                entry: header.take(),
                bytes,
                last,
            });
            if self.batched >= PIECE || self.batch.len() >= BATCH {
                self.send()?;
            }
            if last {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::archive::{write_archive, ArchiveLabel, SourceFile};

    /// Bytes that do not compress much (a simple LCG), so a cut archive cuts a file's content.
    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect()
    }

    /// An archive of 300 small files (more than a batch), one of exactly a piece, one of three
    /// and a half pieces; its path.
    fn archive(dir: &Path) -> std::path::PathBuf {
        let mut contents: Vec<(String, Vec<u8>)> = (0..300)
            .map(|i| {
                (
                    format!("etc/small/{i:03}.conf"),
                    format!("k{i} = v\n").into_bytes(),
                )
            })
            .collect();
        contents.push(("etc/x/exact".into(), noise(PIECE, 1)));
        contents.push(("etc/x/large".into(), noise(PIECE * 7 / 2, 2)));
        let files: Vec<SourceFile> = contents
            .iter()
            .map(|(path, bytes)| {
                let abs = dir.join("src").join(path);
                std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
                std::fs::write(&abs, bytes).unwrap();
                SourceFile {
                    path: path.clone(),
                    abs,
                }
            })
            .collect();
        let path = dir.join("state.tgz");
        let out = File::create(&path).unwrap();
        write_archive(out, &files, &ArchiveLabel::default(), dir).unwrap();
        path
    }

    /// Every entry's name, size and what reading its content gave; reads only 10 bytes of
    /// `large` when `partial`.
    #[derive(Default)]
    struct Record(
        Vec<(String, u64, std::result::Result<Vec<u8>, String>)>,
        bool,
    );

    impl Visitor for Record {
        fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
            let mut bytes = Vec::new();
            let read = match self.1 && entry.name().ends_with("large") {
                true => data.take(10).read_to_end(&mut bytes),
                false => data.read_to_end(&mut bytes),
            };
            let got = read.map(|_| bytes).map_err(|err| err.to_string());
            self.0.push((entry.name(), entry.meta.size, got));
            Ok(())
        }
    }

    #[test]
    fn the_visitor_sees_what_a_plain_second_read_shows_and_the_same_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path());
        let limits = Limits::default();
        let (mut plain, mut ahead) = (Record(Vec::new(), true), Record(Vec::new(), true));
        let open = || File::open(&path).unwrap();
        let want = reread_archive_from(open(), &path, &limits, &mut plain).unwrap();
        let got = reread_ahead(open(), &path, &limits, &mut ahead).unwrap();
        assert_eq!(ahead.0, plain.0);
        assert!(ahead.0.len() > BATCH + 2, "{}", ahead.0.len());
        assert_eq!((got.sha256, got.bytes), (want.sha256, want.bytes));
        assert_eq!(got.files.len(), want.files.len());
        assert!(got.problems.is_empty(), "{:?}", got.problems);
    }

    #[test]
    fn a_visitor_error_is_returned_as_it_is_and_stops_the_reader() {
        struct Fails(usize);
        impl Visitor for Fails {
            fn entry(&mut self, _: &InnerEntry, _: &mut dyn Read) -> Result<()> {
                self.0 += 1;
                anyhow::ensure!(self.0 < 5, "disk full at entry {}", self.0);
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path());
        let file = File::open(&path).unwrap();
        let mut visitor = Fails(0);
        let err = reread_ahead(file, &path, &Limits::default(), &mut visitor).unwrap_err();
        assert_eq!(format!("{err:#}"), "disk full at entry 5");
        assert_eq!(visitor.0, 5);
    }

    #[test]
    fn a_cut_archive_is_the_readers_error_and_no_file_reads_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.tgz");
        std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
        let limits = Limits::default();
        let (mut plain, mut ahead) = (Record::default(), Record::default());
        let want = reread_archive_from(File::open(&cut).unwrap(), &cut, &limits, &mut plain);
        let got = reread_ahead(File::open(&cut).unwrap(), &cut, &limits, &mut ahead);
        let (want, got) = (want.unwrap_err(), got.unwrap_err());
        assert_eq!(format!("{got:#}"), format!("{want:#}"));
        let (last, size, read) = ahead.0.last().expect("some entries before the cut");
        assert!(read.is_err(), "`{last}` ({size} bytes) read {read:?}");
        for (name, size, read) in &ahead.0[..ahead.0.len() - 1] {
            assert_eq!(read.as_ref().map(Vec::len), Ok(*size as usize), "{name}");
        }
    }
}
