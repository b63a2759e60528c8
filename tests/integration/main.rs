//! The one integration test crate: drives the real `statectl` binary against fake hosts laid
//! out in temp dirs (see `testenv`). Nothing here touches the real `/etc` or boot banks.

mod testenv;

mod archive_inputs;
mod archive_tools;
mod backup;
mod bank_locks;
mod banks;
mod bootcfg_faults;
mod bundle_readers;
mod bundles;
mod crash;
mod durability;
mod encrypted;
mod encrypted_refusals;
mod errors;
mod esxi_tree;
mod fat;
mod faults;
mod firmware;
mod hand_repacked;
mod host_to_host;
mod hostile;
mod large_archive;
mod load;
mod loader_model;
mod loader_writes;
mod operator;
mod races;
mod reads;
mod release;
mod restore;
mod small_fixes;
mod sweep;
mod untrusted;
mod untrusted_build;
mod writers;
mod writers_sweep;
