//! The one integration test crate: drives the real `statectl` binary against fake hosts laid
//! out in temp dirs (see `testenv`). Nothing here touches the real `/etc` or boot banks.

mod testenv;

mod ansible;
mod archive_inputs;
mod archive_tools;
mod backup;
mod bank_locks;
mod banks;
mod bundles;
mod configstore;
mod copies;
mod dissect_target;
mod encrypted;
mod encrypted_refusals;
mod errors;
mod esxi_tree;
mod fat;
mod faults;
mod firmware;
mod fleet;
mod hostile;
mod init_script;
mod keystore_names;
mod large_archive;
mod load;
mod loader_model;
mod loader_writes;
mod operator;
mod reads;
mod release;
mod restore;
mod sweep;
mod untrusted;
mod untrusted_build;
mod writers;
