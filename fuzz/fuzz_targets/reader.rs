//! Fuzz target: any bytes through the one archive reader must give a summary or an error,
//! never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statectl::archive::{read_archive_stream, CheckOnly, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_expanded: 8 << 20,
        max_entries: 1_000,
        max_header: 64 << 10,
    };
    let _ = read_archive_stream(
        data,
        std::path::Path::new("fuzz.tgz"),
        &limits,
        &mut CheckOnly,
    );
});
