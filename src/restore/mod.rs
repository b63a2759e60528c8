//! Writing archive content onto a filesystem: the shared, link-safe file placement used by
//! `extract` and `restore`.

pub mod place;

pub use place::{FileMeta, Placer};
