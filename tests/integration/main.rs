//! The one integration test crate: drives the real `statectl` binary against fake hosts laid
//! out in temp dirs (see `testenv`). Nothing here touches the real `/etc` or boot banks.

mod testenv;

mod archive_inputs;
mod archive_tools;
mod backup;
mod banks;
mod bundles;
mod crash;
mod durability;
mod errors;
mod fat;
mod faults;
mod hostile;
mod large_archive;
mod load;
mod operator;
mod restore;
mod sweep;
