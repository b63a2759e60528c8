//! Writing archive content onto a filesystem: the link-safe file placement shared by `extract`
//! and `restore`, and restore's plan, apply and undo steps.
//!
//! The flow of `restore`: the archive is read completely once by the one reader and refused as
//! a whole on any error-level problem; [`plan`] looks at every destination and decides
//! `create`, `overwrite` or `unchanged`; [`apply`] reads the same open archive a second time
//! and stages each planned file beside its destination; [`undo`] saves what will be
//! overwritten; then the staged files are renamed into place.
//!
//! # Security
//! An archive is hostile input, and restore may run with `--root /` as root. The defences, in
//! the order they act:
//! - *Validate everything first.* The whole archive is read before a byte is written; any
//!   absolute name, `..` component, name that is not UTF-8 or holds a control character,
//!   entry that is not a regular file or directory (symlink, hard link, device, fifo), setuid
//!   or setgid bit, duplicate path, or path that is both a file and a directory refuses the
//!   whole archive, naming the entry (`archive::read`, `archive::names`). Unlike tar-rs's
//!   `unpack_in`, which skips `..` entries silently, nothing is skipped: one bad entry, no
//!   restore. A planted link can therefore never come from an archive, not even across two
//!   restores.
//! - *Never out of the root.* Every destination is reached by an `openat` walk from the
//!   root's descriptor with `O_NOFOLLOW | O_DIRECTORY` (`crate::fs::walk`): a pre-existing directory
//!   symlink among the parents (ESXi's own `etc/sfcb/repository`) is resolved by that walk
//!   within the root, as `openat2` `RESOLVE_IN_ROOT` does (an absolute target is relative to
//!   the root, `..` stops there); a link whose target is missing in the root, or a
//!   non-directory among the parents, refuses the restore at planning time, naming it, and
//!   again at write time if one is planted meanwhile. A destination that is a directory,
//!   symlink or special file is refused, not replaced. Nothing is written outside the root,
//!   even when it is `/`.
//! - *Atomic and exact.* Each file goes to a 0600 temp file in its directory, gets its numeric
//!   owner, all 12 mode bits (the sticky bit survives, so the next backup keeps persisting the
//!   file) and mtime through the descriptor; all of them are flushed to disk together (one
//!   `syncfs` per filesystem, [`crate::fs::durable`]) before the first is renamed. The second read
//!   must show the planned files in the planned order and hash to the archive's planned
//!   sha256, or every temp file is removed instead of renamed. Every
//!   file is staged this way before the first rename ([`apply`]), so a restore that fails
//!   while writing (full filesystem, I/O error, changed archive) leaves the root unchanged.
//! - *Nothing is lost.* The files that will be overwritten are first saved into an undo
//!   archive (0600); restoring it brings them back. Files the restore creates are listed in
//!   its manifest's `remove`, so restoring it removes them ([`undo`]).
//! - *Directory entries* of the archive are created 0755 when missing (the mode every missing
//!   parent gets); an existing directory is never changed, and recorded directory modes are
//!   not applied, so an archive cannot open up `etc` to other users.

pub mod apply;
mod dircache;
pub mod place;
pub mod plan;
mod temps;
pub mod undo;
#[cfg(test)]
mod walk_links;

pub use place::{Existing, FileMeta, Placer};
pub use plan::Action;

/// Keeps glibc's mmap threshold at its default (128 KiB) for the rest of the run. glibc raises
/// it each time a mapped buffer is freed, so after the first read of a two-read writer freed
/// its 100,000 records, the second read's growing record list would be reallocated inside the
/// heap, leaving holes of megabytes resident; mapped, each growth is one `mremap`. (musl maps
/// big buffers at a fixed threshold already.)
pub fn keep_big_buffers_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting (under its own lock); no pointer.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}
