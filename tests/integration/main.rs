//! The one integration test crate: drives the real `statectl` binary against fake hosts laid
//! out in temp dirs (see `testenv`). Nothing here touches the real `/etc` or boot banks.

mod testenv;

mod ansible;
mod archive_commands;
mod archive_shapes;
mod backup;
mod bank_commands;
mod bank_locks;
mod bounded_memory;
mod bounded_memory_inputs;
mod bundle_readers;
mod bundles;
mod command_edge_cases;
mod concurrent_runs;
mod configstore;
mod copies;
mod cron_links_syslog_man;
mod detection_reads;
mod dissect_target;
mod encrypted;
mod encrypted_refusals;
mod error_messages;
mod esxi67_bundles;
mod esxi_tree;
mod extract_races;
mod fat;
mod fleet;
mod full_and_read_only_banks;
mod hand_repacked;
mod host_to_host;
mod init_script;
mod inroot_reads;
mod keystore_names;
mod large_archive;
mod loader_model;
mod loader_writes;
mod long_paths;
mod planted;
mod refusals_change_nothing;
mod release;
mod restore;
mod small_fixes;
mod swap_races;
mod swapper;
mod sweep;
