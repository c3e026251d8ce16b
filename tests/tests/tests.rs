//! The cross-crate tests: one test binary (ripgrep's layout), with the helpers that
//! build and run the binaries in `common` and one module per area. The QEMU import and
//! export tests are still binaries of their own (see README, "Code left as is").

mod common;

mod cli_corrupt;
mod cli_filters;
mod cli_hostile;
mod cli_index_query;
mod cli_sel4_records;
mod cli_symbols;
mod cli_threads;
mod cli_truth;
mod cli_uart;
mod cli_used_part;
mod roundtrip_prop;
mod scan_paths;
