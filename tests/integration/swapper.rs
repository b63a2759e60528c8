//! Helpers of the race tests: a thread that keeps exchanging two names with
//! `renameat2(RENAME_EXCHANGE)` (a directory and a link to somewhere else, as an attacker who
//! owns the parent would), and the raw bytes an archive holds, to look for bytes from outside.

#![allow(dead_code)]

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Exchanges `a` and `b` atomically (both must exist).
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let a = CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: two valid NUL-terminated paths; renameat2 only renames.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match done {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// A racing thread exchanging two names until dropped.
pub struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Swapper {
    /// Starts exchanging `a` and `b` as fast as it can (an even number of times when stopped,
    /// so both names end where they started).
    pub fn start(a: PathBuf, b: PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (stop_flag, count) = (Arc::clone(&stop), Arc::clone(&swaps));
        let thread = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                for _ in 0..2 {
                    exchange(&a, &b).expect("renameat2(RENAME_EXCHANGE)");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Swapper {
            stop,
            swaps,
            thread: Some(thread),
        }
    }

    /// How many exchanges were made so far.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Everything a plain `state.tgz` holds, both gzip layers undone: the outer tar with the
/// inner tar's bytes in place of `local.tgz` (so a search finds any file content).
pub fn unpacked(archive: &Path) -> Vec<u8> {
    let bytes = std::fs::read(archive).unwrap();
    let mut outer = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut outer)
        .unwrap();
    let mut all = outer.clone();
    let mut tar = tar::Archive::new(outer.as_slice());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if entry.path().unwrap() == Path::new("local.tgz") {
            flate2::read::MultiGzDecoder::new(data.as_slice())
                .read_to_end(&mut all)
                .unwrap();
        }
    }
    all
}

/// True when `marker` occurs in `bytes`.
pub fn holds(bytes: &[u8], marker: &[u8]) -> bool {
    bytes.windows(marker.len()).any(|w| w == marker)
}
