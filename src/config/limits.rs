//! [`Limits`]: the bounds every reader puts on untrusted input (an archive's expanded size,
//! entries and header extensions), part of the configuration a run is given, not of the
//! archive format.

/// Limits on untrusted input (docs/reference.md "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total decompressed bytes of both layers.
    pub max_expanded: u64,
    /// Entries per layer.
    pub max_entries: u64,
    /// Bytes of one header extension (GNU long name, PAX records).
    pub max_header: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expanded: 1 << 30,
            max_entries: 100_000,
            max_header: 64 << 10,
        }
    }
}
