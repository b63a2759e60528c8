//! Filesystem I/O every layer shares: atomic replace ([`atomic`]), one `syncfs` per filesystem
//! ([`durable`]), host files read only through the in-root walk ([`hostfile`], [`walk`]).
//!
//! A leaf: it imports nothing above it (the walk's tests through the placer live in restore).

pub mod atomic;
pub mod durable;
pub mod hostfile;
pub mod walk;
#[cfg(test)]
mod walk_fuzz;
