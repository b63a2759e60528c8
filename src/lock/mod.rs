//! Every lock statectl takes, in one place: the kernel `flock` on a keyed file in the run
//! directory ([`file`]), the root lock ([`root`]), the bank locks ([`bank`]) and ESXi's own
//! PID-file bank lock ([`esxi`]). The order every writer takes them in is in [`bank`]'s doc.
//!
//! A leaf: it knows hosts and paths, not what the locked runs do.

pub mod bank;
pub mod esxi;
pub mod file;
pub mod root;

pub use bank::{lock_banks, lock_for_writing, BankLock, DEFAULT_WAIT};
pub use root::{lock_root, RootAccess};
