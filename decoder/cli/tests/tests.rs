//! The `tracemark` binary's integration tests: one test binary (ripgrep's layout), with
//! the helpers in `util` and one module per area. `capture.rs` and `export.rs` are
//! still test binaries of their own (see README, "Code left as is").

mod util;

mod cli;
mod clock_back;
